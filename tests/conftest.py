"""Shared fixtures: an in-process app (ASGI) and a real server process, both on temp data.

Markers (pyproject.toml): a test that uses a fixture that starts a real server
(``server_factory``, so ``server`` too, and the few below) is marked ``server``, one that uses
the ``browser`` or ``page`` fixtures ``browser``; others are marked by hand. Starting a server in
a test not marked ``server`` is an error. The quick inner loop leaves them out:
``pytest -m "not browser and not server and not slow"`` (docs/development.md).
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import httpx
import psutil
import pytest

from tasky.api import TaskyApp
from tasky.server import build_app
from tasky.settings import Settings
from tasky.workers.registry import WorkerRegistry, default_registry
from tests import hang_watchdog

ROOT = Path(__file__).resolve().parent.parent
_PR_SET_CHILD_SUBREAPER = 36


def pytest_configure(config: pytest.Config) -> None:
    """Adopt every orphan the tests make (a killed server's task processes, say).

    As a child subreaper, the test process becomes the parent of any descendant whose own parent
    died, so the check at the end of the session sees everything a test started, orphans too.
    """
    set_subreaper(True)
    config.pluginmanager.register(hang_watchdog, "hang_watchdog")


def set_subreaper(on: bool) -> None:
    """Adopt orphans (see pytest_configure), or not: a test that restarts a system service turns
    it off while the service's daemon detaches, so the daemon goes to init, not to this process
    (whose end-of-session check would kill it as a leftover)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_CHILD_SUBREAPER, 1 if on else 0, 0, 0, 0)


# Fixtures that start real servers (server_factory, and those that build their own).
_SERVER_FIXTURES = {
    "server_factory",
    "shared_server",
    "fuzz_server",
    "script_server",
    "srv",
    "tls_server",
}
_BROWSER_FIXTURES = {"browser", "page"}
# The markers of the test being set up or run (for ServerProcess.start's check).
_RUNNING_MARKS: set[str] = set()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if used & _SERVER_FIXTURES:
            item.add_marker(pytest.mark.server)
        if used & _BROWSER_FIXTURES:
            item.add_marker(pytest.mark.browser)


def pytest_runtest_setup(item: pytest.Item) -> None:
    # Before any fixture of the test, module-scoped ones too, is set up.
    _RUNNING_MARKS.clear()
    _RUNNING_MARKS.update(mark.name for mark in item.iter_markers())


def _live_descendants() -> list[psutil.Process]:
    alive = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except psutil.NoSuchProcess:
            pass
    return alive


def _reap_zombies() -> None:
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The suite leaves no process behind: any still alive fails the run (and is killed)."""
    deadline = time.monotonic() + 5  # a server stopped by the last test may still be exiting
    left = _live_descendants()
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = _live_descendants()
    for proc in left:
        try:
            print(f"\nleft running by the tests: pid {proc.pid}: {' '.join(proc.cmdline())}")
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(left, timeout=5)
    _reap_zombies()
    if left:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(autouse=True)
def _no_tasky_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment must not leak settings into tests."""
    for name in list(os.environ):
        if name.startswith("TASKY_"):
            monkeypatch.delenv(name)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    root = tmp_path / "files"
    root.mkdir()
    return Settings(data_dir=tmp_path / "data", roots=[root], cancel_wait_seconds=2.0)


def registry_with(*modules: str) -> WorkerRegistry:
    registry = default_registry()
    for module in modules:
        registry.register_module(module)
    return registry


@pytest.fixture
def registry() -> WorkerRegistry:
    """The examples plus the small test workers of tests/workers_for_tests.py."""
    return registry_with("tests.workers_for_tests")


async def _open_client(app: TaskyApp) -> AsyncIterator[httpx.AsyncClient]:
    starlette = app.starlette
    async with starlette.router.lifespan_context(starlette):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield client


@pytest.fixture
async def app(settings: Settings, registry: WorkerRegistry) -> TaskyApp:
    return build_app(settings, registry=registry)


@pytest.fixture
async def client(app: TaskyApp) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client talking to the app in-process (lifespan started, real SQLite file)."""
    async for c in _open_client(app):
        yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class ServerProcess:
    """A real ``tasky serve`` child process."""

    data_dir: Path
    port: int
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> str:
        return self.url + "/tasky/v1"

    def start(self, timeout: float = 20.0) -> None:
        if "server" not in _RUNNING_MARKS:
            # Or the quick inner loop (-m "not server") would start servers after all.
            raise RuntimeError(
                "this test starts a real server: mark it @pytest.mark.server (or use the "
                "server_factory fixture, which marks it)"
            )
        self.log_path = self.data_dir.parent / f"server-{self.port}.log"
        # No grace by default: most tests stop servers with tasks still running and would wait for
        # it; the tests of the graceful shutdown (test_ops_shutdown.py) give one.
        env = {**os.environ, "TASKY_GRACE": "0", **self.env, "PYTHONPATH": str(ROOT)}
        with self.log_path.open("ab") as log:  # the child keeps its own copy of the descriptor
            self.proc = self._spawn(env, log)
        self._wait_ready(timeout)

    def _spawn(self, env: dict[str, str], log: object) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tasky",
                "serve",
                "--addr",
                f"127.0.0.1:{self.port}",
                "--data",
                str(self.data_dir),
                *self.args,
            ],
            stdout=log,  # type: ignore[arg-type]
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(self.data_dir.parent),
            start_new_session=True,
        )

    def _wait_ready(self, timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.read_log()}")
            try:
                # 401: up, but with a token required.
                if httpx.get(self.api + "/workers", timeout=1).status_code in (200, 401):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server did not start:\n{self.read_log()}")

    def read_log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def kill(self) -> None:
        """SIGKILL: the crash case."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


class ServerFactory(Protocol):
    """Starts a real server (``start=False``: only prepares it) with ``tasky serve`` ``args``."""

    def __call__(
        self,
        *args: str,
        data_dir: Path | None = None,
        env: dict[str, str] | None = None,
        start: bool = True,
    ) -> ServerProcess: ...


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[ServerFactory]:
    started: list[ServerProcess] = []

    def make(
        *args: str,
        data_dir: Path | None = None,
        env: dict[str, str] | None = None,
        start: bool = True,
    ) -> ServerProcess:
        srv = ServerProcess(data_dir or tmp_path / "data", free_port(), list(args), env or {})
        started.append(srv)
        if start:
            srv.start()
        return srv

    yield make
    for srv in started:
        srv.stop()


@pytest.fixture
def server(server_factory: ServerFactory) -> ServerProcess:
    """A real server with the examples and the test workers."""
    return server_factory(
        "--workers", "tasky.workers.examples", "--workers", "tests.workers_for_tests"
    )
