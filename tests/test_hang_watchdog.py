"""The suite's hang watchdog (tests/hang_watchdog.py) ends a run whose test is stuck where
pytest-timeout cannot interrupt it: with every thread's stack printed, what the test started
killed, and a failing exit status, within seconds of the hard limit instead of at CI's."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest

from tests.conftest import ROOT
from tests.hang_watchdog import EXIT_STUCK
from tests.test_process_server import wait_gone

# A normal pthread mutex locked twice by one thread waits forever, and a signal does not end
# the wait: the SIGALRM of pytest-timeout is noted but its Python handler never runs.
STUCK_TEST = """
import ctypes, subprocess, sys

def test_stuck(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    open({pid_file!r}, "w").write(str(child.pid))
    libc = ctypes.{library}(None)
    mutex = ctypes.create_string_buffer(64)  # zeroes: PTHREAD_MUTEX_INITIALIZER on glibc
    libc.pthread_mutex_lock(mutex)
    libc.pthread_mutex_lock(mutex)
"""


def _run_stuck(tmp_path: Path, library: str) -> tuple[subprocess.CompletedProcess[str], int]:
    pid_file = tmp_path / "child.pid"
    (tmp_path / "test_stuck.py").write_text(
        textwrap.dedent(STUCK_TEST.format(pid_file=str(pid_file), library=library))
    )
    ini = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
    (tmp_path / "pytest.ini").write_text(ini)
    run = subprocess.run(
        [
            sys.executable,
            *("-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.hang_watchdog"),
            *("-c", str(tmp_path / "pytest.ini"), "--rootdir", str(tmp_path)),
            *("-o", "timeout=1", str(tmp_path / "test_stuck.py")),
        ],
        cwd=ROOT,
        env={**os.environ, "HANG_GRACE_SECONDS": "3"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return run, int(pid_file.read_text())


@pytest.mark.slow
def test_a_test_stuck_in_c_code_ends_the_run_with_its_stacks(tmp_path: Path) -> None:
    run, child = _run_stuck(tmp_path, "CDLL")  # the GIL is let go of: the watchdog thread runs
    assert run.returncode == EXIT_STUCK, run.stderr
    assert "test_stuck.py::test_stuck is stuck past its hard limit" in run.stderr
    assert 'File "' in run.stderr and "test_stuck" in run.stderr  # the stuck thread's stack
    assert f"killing what the tests started: pid {child}" in run.stderr
    assert not wait_gone([psutil.Process(child)], 5)


@pytest.mark.slow
def test_a_test_stuck_holding_the_gil_ends_the_run_all_the_same(tmp_path: Path) -> None:
    run, child = _run_stuck(tmp_path, "PyDLL")  # the GIL is held: only faulthandler can act
    process = psutil.Process(child)
    try:
        assert run.returncode == 1, run.stderr
        assert "Timeout (0:00:0" in run.stderr
        assert "test_stuck" in run.stderr
    finally:
        # faulthandler's exit kills nothing: the child is this process's to end (it adopts it).
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
        assert not wait_gone([process], 5)
