"""What the security tests share: a bootstrap token file and a few helpers for real servers."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import ServerProcess

# Long enough for any address (tasky.settings.MIN_PUBLIC_TOKEN); never on a command line.
BOOTSTRAP = "bootstrap-token-for-the-security-tests-0123456789"
WORKERS = ("--workers", "tests.workers_for_tests")


def write_token_file(path: Path, token: str = BOOTSTRAP, mode: int = 0o600) -> Path:
    path.write_text(token + "\n")
    os.chmod(path, mode)
    return path


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def start_with_token_file(server_factory: Any, tmp_path: Path, *args: str) -> ServerProcess:
    token_file = write_token_file(tmp_path / "bootstrap.token")
    server: ServerProcess = server_factory(*WORKERS, "--token-file", str(token_file), *args)
    return server


def create_token(api: str, admin: str, name: str, role: str, **extra: Any) -> str:
    """A new token's secret (created through the API by ``admin``)."""
    answer = httpx.post(
        f"{api}/tokens", json={"name": name, "role": role, **extra}, headers=bearer(admin)
    )
    assert answer.status_code == 201, answer.text
    token: str = answer.json()["Token"]
    return token


def audit_entries(api: str, admin: str, want: int) -> list[dict[str, Any]]:
    """The audit log, once it holds ``want`` entries (they are written just after the answer)."""
    entries: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        entries = httpx.get(f"{api}/audit", headers=bearer(admin)).json()["Entries"]
        if len(entries) >= want:
            return entries
        time.sleep(0.05)
    raise AssertionError(f"expected {want} audit entries, got {entries}")
