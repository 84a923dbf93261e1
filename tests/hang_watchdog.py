"""A test stuck where pytest-timeout cannot reach it ends the run at once, saying where.

pytest-timeout interrupts a test with SIGALRM, whose Python handler runs only once the main thread
gets back to Python code. A main thread blocked inside C code never does: two threads each
waiting for what the other holds (a SQLite connection's mutex and the GIL, say), or a wait
inside a library that resumes after signals. Nor is a test interrupted twice: a cleanup that
hangs after the timeout fired waits forever. Either way the whole run would sit until CI's own
limit and print nothing about the cause.

So each test also gets a hard limit, GRACE seconds past its own timeout: a watchdog thread then
prints every thread's stack, kills what the tests started and ends the process with
EXIT_STUCK. If the stuck thread holds the GIL, that thread cannot run either; faulthandler's
watchdog, which needs no GIL, prints the stacks and exits FALLBACK seconds later.

A pytest plugin: tests/conftest.py registers it, or ``-p tests.hang_watchdog`` loads it.
"""

from __future__ import annotations

import faulthandler
import os
import threading
import time
from collections.abc import Generator

import psutil
import pytest

# The tests of this watchdog set a short grace in the environment of the run they start.
GRACE = float(os.environ.get("HANG_GRACE_SECONDS", "180"))
FALLBACK = GRACE / 3
EXIT_STUCK = 70
# The limit of a test run with no timeout at all (timeout = 0).
UNTIMED = 600.0


class Watchdog:
    """One thread for the whole run, armed for each test with its deadline. It writes to
    ``err_fd``: the run's real standard error, as the test's own is captured (and lost when
    the process ends this way)."""

    def __init__(self, err_fd: int) -> None:
        self._err_fd = err_fd
        self._changed = threading.Condition()
        self._deadline: float | None = None
        self._nodeid = ""
        self._thread = threading.Thread(target=self._watch, name="test-hang-watchdog", daemon=True)
        self._thread.start()

    def arm(self, nodeid: str, limit: float) -> None:
        with self._changed:
            self._nodeid, self._deadline = nodeid, time.monotonic() + limit
            self._changed.notify()
        faulthandler.dump_traceback_later(limit + FALLBACK, exit=True, file=self._err_fd)

    def disarm(self) -> None:
        faulthandler.cancel_dump_traceback_later()
        with self._changed:
            self._deadline = None
            self._changed.notify()

    def _watch(self) -> None:
        with self._changed:
            while True:
                if self._deadline is None:
                    self._changed.wait()
                    continue
                left = self._deadline - time.monotonic()
                if left > 0:
                    self._changed.wait(left)
                    continue
                self._end_the_run()

    def _say(self, line: str) -> None:
        os.write(self._err_fd, (line + "\n").encode(errors="replace"))

    def _end_the_run(self) -> None:
        self._say(f"\n\n{self._nodeid} is stuck past its hard limit: every thread's stack:")
        faulthandler.dump_traceback(file=self._err_fd, all_threads=True)
        for proc in psutil.Process().children(recursive=True):
            try:
                self._say(f"killing what the tests started: pid {proc.pid}: {proc.name()}")
                proc.kill()
            except psutil.Error:
                pass
        os._exit(EXIT_STUCK)


def hard_limit(item: pytest.Item) -> float:
    """The test's own timeout (its marker, else the configured one, else UNTIMED) plus GRACE."""
    marker = item.get_closest_marker("timeout")
    if marker is not None and marker.args:
        own = float(marker.args[0])
    else:
        own = float(item.config.getini("timeout") or 0)
    return (own or UNTIMED) + GRACE


_WATCHDOG = pytest.StashKey[Watchdog]()


def pytest_configure(config: pytest.Config) -> None:
    # Output is not captured between the start-up's hooks and the tests: fd 2 is the real one.
    config.stash[_WATCHDOG] = Watchdog(os.dup(2))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, None, None]:
    watchdog = item.config.stash[_WATCHDOG]
    watchdog.arm(item.nodeid, hard_limit(item))
    try:
        yield
    finally:
        watchdog.disarm()
