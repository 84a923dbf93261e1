"""The newer example workers: Checksum, DiskUsage, HTTPCheck, Command and Primes."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tasky.settings import Settings
from tests.helpers import API, action, submit, wait_for
from tests.test_process_mode import alive, task_group


async def outcome(client: httpx.AsyncClient, task_id: str, *wanted: str) -> dict[str, Any]:
    await wait_for(client, task_id, *wanted)
    body: dict[str, Any] = (await client.get(f"{API}/tasks/{task_id}/result")).json()
    return body


# -- Checksum -----------------------------------------------------------------------------------
async def test_checksum_matches_hashlib(client: httpx.AsyncClient, settings: Settings) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    (settings.roots[0] / "blob.bin").write_bytes(data)
    task_id = await submit(client, "Checksum", {"path": "blob.bin"})
    out = (await outcome(client, task_id, "Completed"))["Output"]
    assert out["digest"] == hashlib.sha256(data).hexdigest()
    assert out["bytes"] == len(data) and out["algorithm"] == "sha256"
    task_id = await submit(client, "Checksum", {"path": "blob.bin", "algorithm": "md5"})
    out = (await outcome(client, task_id, "Completed"))["Output"]
    assert out["digest"] == hashlib.md5(data).hexdigest()


async def test_checksum_refuses_outside_roots(
    client: httpx.AsyncClient, settings: Settings, tmp_path: Path
) -> None:
    (tmp_path / "secret").write_text("s")
    (settings.roots[0] / "link").symlink_to(tmp_path / "secret")
    for path in (str(tmp_path / "secret"), "../secret", "link", "."):
        task_id = await submit(client, "Checksum", {"path": path})
        error = (await outcome(client, task_id, "Failed"))["Error"]
        # Symlinks are refused as such now, even ones that would stay inside the root.
        refusals = ("outside the allowed roots", "not a regular file", "symbolic links are not")
        assert any(r in error for r in refusals), error
    r = await client.post(f"{API}/workers/Checksum", json={"path": "x", "algorithm": "crc"})
    assert r.status_code == 422


# -- DiskUsage ----------------------------------------------------------------------------------
async def test_disk_usage_counts_files_and_lists_the_largest(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    root = settings.roots[0] / "tree"
    (root / "a" / "b").mkdir(parents=True)
    sizes = {"small.txt": 10, "a/mid.bin": 50_000, "a/b/big.bin": 200_000}
    for name, size in sizes.items():
        (root / name).write_bytes(b"x" * size)
    os.link(root / "a/b/big.bin", root / "hardlink.bin")  # the same file: counted once
    (root / "outside").symlink_to("/")  # not followed
    task_id = await submit(client, "DiskUsage", {"path": "tree", "top": 2})
    out = (await outcome(client, task_id, "Completed"))["Output"]
    assert (out["files"], out["directories"], out["symlinks"]) == (3, 3, 1)
    allocated = sum((root / n).stat().st_blocks * 512 for n in sizes)
    assert out["bytes"] == allocated
    assert [Path(x["path"]).name for x in out["largest"]] in (
        ["big.bin", "mid.bin"],
        ["hardlink.bin", "mid.bin"],
    )
    assert out["filesystem"]["total"] > 0
    task_id = await submit(client, "DiskUsage", {"path": "/"})
    assert "outside the allowed roots" in (await outcome(client, task_id, "Failed"))["Error"]


# -- HTTPCheck (against a server on 127.0.0.1 only) ----------------------------------------------
@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Loopback is refused by default (tests/test_security_outbound.py); these tests live on it.
    settings.outbound_allow = ["127.0.0.1"]
    return settings


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        code = 404 if self.path == "/missing" else 200
        body = b"hello" if code == 200 else b"no"
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def local_http() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def test_http_check_reports_status_and_latency(
    client: httpx.AsyncClient, local_http: str
) -> None:
    task_id = await submit(client, "HTTPCheck", {"url": local_http + "/"})
    out = (await outcome(client, task_id, "Completed"))["Output"]
    assert out["status"] == 200 and out["ok"] is True and out["bytes_read"] == 5
    assert out["latency_ms"] >= 0 and out["total_ms"] >= out["latency_ms"]
    task_id = await submit(client, "HTTPCheck", {"url": local_http + "/missing"})
    out = (await outcome(client, task_id, "Completed"))["Output"]
    assert out["status"] == 404 and out["ok"] is False
    task_id = await submit(
        client, "HTTPCheck", {"url": local_http + "/missing", "expect_status": 200}
    )
    assert (await outcome(client, task_id, "Failed"))["Error"].endswith(
        "expected status 200, got 404"
    )


async def test_http_check_connection_refused(client: httpx.AsyncClient) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    task_id = await submit(client, "HTTPCheck", {"url": f"http://127.0.0.1:{port}/"})
    out = (await outcome(client, task_id, "Completed"))["Output"]
    assert out["status"] is None and out["ok"] is False
    assert out["error"] == "could not connect to 127.0.0.1"
    r = await client.post(f"{API}/workers/HTTPCheck", json={"url": "file:///etc/passwd"})
    assert r.status_code == 422


# -- Command ------------------------------------------------------------------------------------
@pytest.mark.parametrize("arg", ["x; rm -rf /", "$(id)", "`id`", "a && b | c > d"])
async def test_command_passes_arguments_literally(client: httpx.AsyncClient, arg: str) -> None:
    task_id = await submit(client, "Command", {"program": "echo", "args": [arg]})
    out = (await outcome(client, task_id, "Completed"))["Output"]
    assert out == {"exit_code": 0, "stdout_tail": [arg]}


async def test_command_allow_list(client: httpx.AsyncClient) -> None:
    for bad in (
        {"program": "rm", "args": ["-rf", "/"]},
        {"program": "sh"},
        {"program": "uname", "args": ["-x"]},
        {"program": "sleep", "args": ["1; id"]},
    ):
        r = await client.post(f"{API}/workers/Command", json=bad)
        assert r.status_code == 422, bad
    task_id = await submit(client, "Command", {"program": "uname"})
    out = (await outcome(client, task_id, "Completed"))["Output"]
    assert out["exit_code"] == 0 and out["stdout_tail"][0].split()[0] == os.uname().sysname


async def test_command_pause_and_cancel_a_sleep(client: httpx.AsyncClient) -> None:
    task_id = await submit(client, "Command", {"program": "sleep", "args": ["300"]})
    await wait_for(client, task_id, "Running")
    assert (await action(client, task_id, "pause")).json()["Status"] == "Paused"
    assert (await action(client, task_id, "resume")).json()["Status"] == "Running"
    r = await client.post(f"{API}/tasks/{task_id}/cancel")
    assert r.json()["Status"] == "Canceled"


# -- Primes -------------------------------------------------------------------------------------
async def test_primes_counts_correctly(client: httpx.AsyncClient) -> None:
    task_id = await submit(client, "Primes", {"limit": 100_000})
    out = (await outcome(client, task_id, "Completed"))["Output"]
    assert out == {"limit": 100_000, "count": 9592, "largest": 99991}


async def test_primes_pause_and_cancel_without_cooperation(client: httpx.AsyncClient) -> None:
    task_id = await submit(client, "Primes", {"limit": 10**12})
    group = await task_group(client, task_id, 0)
    assert (await action(client, task_id, "pause")).json()["Status"] == "Paused"
    r = await client.post(f"{API}/tasks/{task_id}/cancel")
    assert r.json()["Status"] == "Canceled"
    assert alive(group) == []
