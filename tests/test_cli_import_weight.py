"""Every command of the command line, and every script that makes a ``tasky.Client``, starts a
Python process: what they import is paid on each run. The store (SQLite and PostgreSQL code) and
aiohttp (the asyncio client's transport) load only where they are used; a command that creates
a task took 0.48 s before and 0.31 s after (bench/README.md)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("aiohttp", "httpx_aiohttp", "tasky.store", "tasky.server", "uvicorn", "psycopg")


def _loaded_by(code: str) -> list[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    modules: list[str] = json.loads(out.strip().splitlines()[-1])
    return [m for m in modules if m.split(".")[0] in HEAVY or m.startswith(HEAVY)]


@pytest.mark.parametrize(
    "code",
    [
        "import tasky.cli.main",
        "from tasky import Client",
        "import tasky.client",
    ],
)
def test_the_command_line_and_the_blocking_client_load_no_store_and_no_aiohttp(code: str) -> None:
    assert _loaded_by(code) == []


def test_the_asyncio_client_loads_aiohttp_when_it_makes_its_transport() -> None:
    loaded = _loaded_by("from tasky import AsyncClient\nAsyncClient('http://127.0.0.1:9')")
    assert "aiohttp" in loaded
    assert not [m for m in loaded if m.startswith("tasky.store")]
