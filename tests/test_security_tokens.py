"""Tokens: made and shown once, hashed at rest, refused the moment they are revoked or expire,
kept off the command line, and long enough wherever the server listens beyond loopback."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tasky.settings import Settings
from tests.conftest import ROOT, ServerProcess, free_port
from tests.security_helpers import (
    BOOTSTRAP,
    WORKERS,
    bearer,
    create_token,
    start_with_token_file,
    write_token_file,
)
from tests.test_cli_client import as_json, tasky


def serve_once(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``tasky serve`` that must refuse to start (killed after a while if it does start)."""
    return subprocess.run(
        [sys.executable, "-m", "tasky", "serve", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=30,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )


def test_revoked_token_is_refused_by_the_next_request(server_factory: Any, tmp_path: Path) -> None:
    server = start_with_token_file(server_factory, tmp_path)
    token = create_token(server.api, BOOTSTRAP, "ci", "viewer")
    assert token.startswith("tasky_") and len(token) >= 43
    assert httpx.get(f"{server.api}/workers", headers=bearer(token)).status_code == 200
    revoked = httpx.delete(f"{server.api}/tokens/ci", headers=bearer(BOOTSTRAP))
    assert revoked.status_code == 200
    refused = httpx.get(f"{server.api}/workers", headers=bearer(token))
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == "Bearer"
    assert httpx.delete(f"{server.api}/tokens/ci", headers=bearer(BOOTSTRAP)).status_code == 404


def test_expired_token_is_refused(server_factory: Any, tmp_path: Path) -> None:
    server = start_with_token_file(server_factory, tmp_path)
    # 0.00002 days: under two seconds.
    token = create_token(server.api, BOOTSTRAP, "brief", "viewer", expires_days=0.00002)
    assert httpx.get(f"{server.api}/workers", headers=bearer(token)).status_code == 200
    time.sleep(2)
    refused = httpx.get(f"{server.api}/workers", headers=bearer(token))
    assert refused.status_code == 401 and "expired" in refused.json()["Error"]
    listed = httpx.get(f"{server.api}/tokens", headers=bearer(BOOTSTRAP)).json()["Tokens"]
    assert [(t["Name"], t["Expired"]) for t in listed] == [("brief", True)]
    assert listed[0]["LastUsedAt"] is not None  # noted (at most once a minute) when it worked


def test_only_the_hash_is_stored_and_listing_never_shows_tokens(
    server_factory: Any, tmp_path: Path
) -> None:
    server = start_with_token_file(server_factory, tmp_path)
    token = create_token(server.api, BOOTSTRAP, "ci", "operator", workers=["Echo"])
    listing = httpx.get(f"{server.api}/tokens", headers=bearer(BOOTSTRAP))
    assert token not in listing.text and 'Token"' not in listing.text
    assert listing.json()["Tokens"][0]["Workers"] == ["echo"]
    with sqlite3.connect(server.data_dir / "tasky.db") as db:
        dump = "\n".join(db.iterdump())
    assert token not in dump and "ci" in dump


@pytest.mark.server  # a tasky serve that stops before it listens
def test_short_tokens_are_refused_beyond_loopback(tmp_path: Path) -> None:
    for short in ("x", "y" * 31):
        with pytest.raises(ValueError, match="at least 32"):
            Settings(host="0.0.0.0", token=short).check()
        Settings(host="127.0.0.1", token=short).check()  # loopback keeps short tokens working
    Settings(host="0.0.0.0", token="z" * 32).check()
    with pytest.raises(ValueError, match="without a token"):
        Settings(host="0.0.0.0").check()
    Settings(host="0.0.0.0").check(stored_tokens=1)
    token_file = write_token_file(tmp_path / "short.token", "y" * 31)
    out = serve_once(
        "--addr",
        "0.0.0.0:0",
        "--data",
        str(tmp_path / "d"),
        "--token-file",
        str(token_file),
        cwd=tmp_path,
    )
    assert out.returncode == 2 and "31 characters: use at least 32" in out.stderr


def test_token_file_works_and_stays_out_of_ps(server_factory: Any, tmp_path: Path) -> None:
    server = start_with_token_file(server_factory, tmp_path)
    assert server.proc is not None
    cmdline = Path(f"/proc/{server.proc.pid}/cmdline").read_bytes()
    assert b"--token-file" in cmdline and BOOTSTRAP.encode() not in cmdline
    assert httpx.get(f"{server.api}/workers").status_code == 401
    assert httpx.get(f"{server.api}/workers", headers=bearer(BOOTSTRAP)).status_code == 200


@pytest.mark.server  # a tasky serve that stops before it listens
def test_a_token_file_others_can_read_is_refused(tmp_path: Path) -> None:
    token_file = write_token_file(tmp_path / "open.token", mode=0o644)
    out = serve_once(
        "--addr",
        f"127.0.0.1:{free_port()}",
        "--data",
        str(tmp_path / "d"),
        "--token-file",
        str(token_file),
        cwd=tmp_path,
    )
    assert out.returncode == 2 and "chmod 600" in out.stderr


def test_a_token_on_the_command_line_warns(server_factory: Any) -> None:
    server: ServerProcess = server_factory(*WORKERS, "--token", "s3cret")
    assert "visible to every user in ps" in server.read_log()
    assert httpx.get(f"{server.api}/workers", headers=bearer("s3cret")).status_code == 200


def test_the_first_stored_token_turns_auth_on_at_once(server_factory: Any) -> None:
    server: ServerProcess = server_factory(*WORKERS)
    api = server.api
    assert httpx.get(f"{api}/workers").status_code == 200  # no token at all: loopback-open
    # The first token must be an admin's: a viewer would lock every admin out.
    first_viewer = httpx.post(f"{api}/tokens", json={"name": "v", "role": "viewer"})
    assert first_viewer.status_code == 409 and "admin" in first_viewer.json()["Error"]
    admin = httpx.post(f"{api}/tokens", json={"name": "root", "role": "admin"}).json()["Token"]
    assert httpx.get(f"{api}/workers").status_code == 401
    assert httpx.post(f"{api}/tokens", json={"name": "x", "role": "admin"}).status_code == 401
    assert httpx.get(f"{api}/workers", headers=bearer(admin)).status_code == 200
    # Without a bootstrap token, the last admin token cannot go (that would open the server
    # again, or lock it).
    last = httpx.delete(f"{api}/tokens/root", headers=bearer(admin))
    assert last.status_code == 409 and "last admin" in last.json()["Error"]


def test_token_names_and_bodies_are_validated(server_factory: Any, tmp_path: Path) -> None:
    server = start_with_token_file(server_factory, tmp_path)
    admin = bearer(BOOTSTRAP)
    for body in (
        {"name": "has space", "role": "viewer"},
        {"name": "é", "role": "viewer"},
        {"name": "x" * 65, "role": "viewer"},
        {"name": "bootstrap", "role": "viewer"},
        {"name": "ok", "role": "root"},
        {"name": "ok", "role": "viewer", "workers": ["Echo"]},
        {"name": "ok", "role": "viewer", "extra": 1},
        {"name": "ok", "role": "viewer", "expires_days": 0},
    ):
        answer = httpx.post(f"{server.api}/tokens", json=body, headers=admin)
        assert answer.status_code == 422, (body, answer.text)
    create_token(server.api, BOOTSTRAP, "ok", "viewer")
    again = httpx.post(f"{server.api}/tokens", json={"name": "ok", "role": "viewer"}, headers=admin)
    assert again.status_code == 409


def test_token_cli_through_the_api(server_factory: Any, tmp_path: Path) -> None:
    server = start_with_token_file(server_factory, tmp_path)
    env = {"TASKY_URL": server.url, "TASKY_TOKEN": BOOTSTRAP}
    create = ("token", "create", "--name", "ci", "--role", "operator", "--workers", "Echo,Hold")
    made = tasky(*create, env=env)
    assert made.exit_code == 0, made.output
    token = made.stdout.strip()
    assert httpx.get(f"{server.api}/workers", headers=bearer(token)).status_code == 200
    listed = tasky("token", "list", "--json", env=env)
    assert (
        as_json(listed)["Tokens"][0]["Workers"] == ["echo", "hold"] and token not in listed.stdout
    )
    table = tasky("token", "list", env=env)
    assert "ci" in table.stdout and "operator" in table.stdout and "echo,hold" in table.stdout
    # An operator token may not manage tokens: a clear refusal, exit code 4.
    refused = tasky("token", "list", env={"TASKY_URL": server.url, "TASKY_TOKEN": token})
    assert refused.exit_code == 4 and "admin" in refused.stderr
    assert tasky("token", "revoke", "ci", env=env).exit_code == 0
    assert httpx.get(f"{server.api}/workers", headers=bearer(token)).status_code == 401


def test_offline_token_before_the_first_start(server_factory: Any, tmp_path: Path) -> None:
    data = tmp_path / "data"
    made = tasky("token", "create", "--name", "root", "--role", "admin", "--data", str(data))
    assert made.exit_code == 0, made.output
    token = made.stdout.strip()
    server: ServerProcess = server_factory(*WORKERS, data_dir=data)
    assert httpx.get(f"{server.api}/workers").status_code == 401
    assert httpx.get(f"{server.api}/workers", headers=bearer(token)).status_code == 200
    # While the server runs, the store is its own: the offline commands refuse.
    busy = tasky("token", "list", "--data", str(data))
    assert busy.exit_code == 4 and "another Tasky server" in busy.stderr
