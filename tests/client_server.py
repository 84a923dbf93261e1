"""One real server per test module for the client and CLI tests (starting one costs ~1 s).

Tests that kill or restart a server use the function-scoped ``server`` fixture instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import ServerProcess, free_port

WORKER_ARGS = ("--workers", "tasky.workers.examples", "--workers", "tests.workers_for_tests")


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("server")
    srv = ServerProcess(root / "data", free_port(), list(WORKER_ARGS))
    with pytest.MonkeyPatch.context() as mp:
        # The module-scoped server must not inherit settings from the environment either.
        for name in list(os.environ):
            if name.startswith("TASKY_"):
                mp.delenv(name)
        srv.start()
    yield srv
    srv.stop()


class RecordingTransport(httpx.HTTPTransport):
    """A real HTTP transport that also notes each request's path (to see how waiting works)."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return super().handle_request(request)

    def count(self, suffix: str) -> int:
        return sum(path.endswith(suffix) for path in self.paths)
