"""Safe defaults: loopback unless a token is set, token checks, one server per database."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tasky.server import build_app
from tasky.settings import Settings, is_loopback, parse_addr
from tests.conftest import ROOT, ServerFactory, ServerProcess


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tasky", *args], capture_output=True, text=True, cwd=cwd, timeout=30
    )


@pytest.mark.server  # a tasky serve that stops before it listens
def test_refuses_public_bind_without_token(tmp_path: Path) -> None:
    out = run_cli("serve", "--addr", "0.0.0.0:0", "--data", str(tmp_path / "d"))
    assert out.returncode == 2
    assert "without a token" in out.stderr


def test_parse_addr_and_loopback() -> None:
    assert parse_addr(":4444") == ("127.0.0.1", 4444)
    assert parse_addr("[::1]:80") == ("::1", 80)
    assert is_loopback("127.0.0.2") and is_loopback("::1") and not is_loopback("10.0.0.1")


def test_second_server_on_same_data_refuses(server_factory: ServerFactory, tmp_path: Path) -> None:
    first: ServerProcess = server_factory()
    out = run_cli("serve", "--addr", "127.0.0.1:0", "--data", str(first.data_dir))
    assert out.returncode == 2
    assert "another Tasky server" in out.stderr and str(first.proc.pid) in out.stderr  # type: ignore[union-attr]
    assert httpx.get(f"{first.api}/workers").status_code == 200


async def test_token_is_required_when_set(settings: Settings) -> None:
    settings.token = "s3cret"
    app = build_app(settings)
    async with app.starlette.router.lifespan_context(app.starlette):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            r = await client.get("/tasky/v1/workers")
            assert r.status_code == 401 and "token" in r.json()["Error"]
            r = await client.get("/tasky/v1/workers", headers={"Authorization": "Bearer nope"})
            assert r.status_code == 401
            r = await client.get("/tasky/v1/workers", headers={"Authorization": "Bearer s3cret"})
            assert r.status_code == 200


def test_token_enforced_on_a_real_server(server_factory: ServerFactory) -> None:
    srv: ServerProcess = server_factory(env={"TASKY_TOKEN": "tok"})
    assert httpx.get(f"{srv.api}/workers").status_code == 401
    ok = httpx.get(f"{srv.api}/workers", headers={"Authorization": "Bearer tok"})
    assert ok.status_code == 200
