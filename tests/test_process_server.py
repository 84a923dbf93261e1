"""Process and command tasks under a real server: crashes, shutdown and a killed server."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import httpx
import psutil

from tests.conftest import ServerFactory, ServerProcess
from tests.helpers import wait_sync
from tests.test_process_mode import alive

# A command worker whose process starts a busy child and then spins itself.
SPIN = "import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', 'while True: pass'])\n"
SPIN += "while True: pass"


def start(server_factory: ServerFactory, tmp_path: Path) -> ServerProcess:
    config = tmp_path / "tasky.toml"
    argv = json.dumps([sys.executable, "-c", SPIN])  # a JSON array is a valid TOML array
    config.write_text(f'[[workers]]\nname = "Spin"\nargv = {argv}\nkill_grace = 1\n')
    return server_factory("--workers", "tests.process_workers", "--config", str(config))


def post(srv: ServerProcess, worker: str, config: object) -> str:
    r = httpx.post(f"{srv.api}/workers/{worker}", json=config)
    assert r.status_code == 201, r.text
    task_id: str = r.json()["TaskId"]
    return task_id


def descendants(srv: ServerProcess, count: int) -> list[psutil.Process]:
    """The server's task processes, once ``count`` of them run."""
    assert srv.proc is not None
    server = psutil.Process(srv.proc.pid)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        procs = alive(server.children(recursive=True))
        if len(procs) >= count:
            return procs
        time.sleep(0.05)
    raise AssertionError("the task processes did not start")


def wait_gone(procs: list[psutil.Process], seconds: float = 15) -> list[psutil.Process]:
    deadline = time.monotonic() + seconds
    while alive(procs) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive(procs)


def test_crash_fails_the_task_and_the_server_keeps_running(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    srv = start(server_factory, tmp_path)
    for how in ("segv", "kill", "exit"):
        task_id = post(srv, "Crash", {"how": how})
        wait_sync(srv.api, task_id, "Failed")
    assert srv.proc is not None and srv.proc.poll() is None
    task_id = post(srv, "Chatty", {"lines": 3})
    wait_sync(srv.api, task_id, "Completed")


def test_server_shutdown_leaves_no_task_process(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    srv = start(server_factory, tmp_path)
    post(srv, "Burn", {"children": 1})
    post(srv, "Spin", {})
    procs = descendants(srv, 4)
    srv.stop()  # SIGTERM: a graceful stop
    assert srv.proc is not None and srv.proc.returncode is not None
    assert wait_gone(procs) == []


def test_killed_server_takes_process_tasks_with_it(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    """SIGKILL of the server: process-mode groups die with it (parent-death signal)."""
    srv = start(server_factory, tmp_path)
    post(srv, "Burn", {"children": 2})
    procs = descendants(srv, 3)
    srv.kill()
    assert wait_gone(procs) == []


def test_killed_server_takes_command_tasks_with_it(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    """SIGKILL of the server: a command's program dies with it (setpriv's parent-death signal);
    what the program started itself is ended when the server starts again, before any re-run.
    """
    srv = start(server_factory, tmp_path)
    task_id = post(srv, "Spin", {})
    procs = descendants(srv, 2)  # the program and the child it starts
    assert srv.proc is not None
    program = alive(psutil.Process(srv.proc.pid).children(recursive=False))
    assert len(program) == 1 and "-c" in program[0].cmdline()
    grandchild = [p for p in procs if p not in program]
    assert len(grandchild) == 1
    srv.kill()
    assert wait_gone(program) == []
    assert alive(grandchild), "the program's own child outlives a killed server"
    srv.start()  # same data directory: recovery finds the group and ends it
    assert wait_gone(grandchild) == []
    wait_sync(srv.api, task_id, "Failed")  # not idempotent: failed, not re-run
    assert "server stopped" in httpx.get(f"{srv.api}/tasks/{task_id}").json()["Error"]
