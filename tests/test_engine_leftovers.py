"""Finding a killed server's task processes again: by mark or recorded group, never by pid."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil

from tasky.engine.leftovers import (
    MARK_VAR,
    ChildRecord,
    boot_id,
    describe,
    find_leftovers,
    kill_leftovers,
    new_mark,
    start_ticks,
)

_SLEEP = [sys.executable, "-c", "import time; time.sleep(60)"]
# A leader that starts a grandchild in its own group, then exits: the grandchild is left over.
_FORK_AND_LEAVE = [
    sys.executable,
    "-c",
    "import subprocess, sys; subprocess.Popen([sys.executable, '-c', "
    "'import time; time.sleep(60)']); print('started', flush=True)",
]


def _spawn(
    argv: list[str], env: dict[str, str] | None = None, *, piped: bool = False
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv,
        env={**os.environ, **(env or {})},
        start_new_session=True,
        stdout=subprocess.PIPE if piped else subprocess.DEVNULL,
    )


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_gone(pids: list[int]) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if all(_gone(p) for p in pids):
            return True
        time.sleep(0.02)
    return False


def test_marked_grandchild_is_found_after_its_leader_exits() -> None:
    mark = new_mark()
    leader = _spawn(_FORK_AND_LEAVE, {MARK_VAR: mark}, piped=True)
    try:
        record = describe("t1", leader.pid, mark)
        assert record is not None and record.boot_id == boot_id()
        assert leader.stdout is not None and leader.stdout.readline() == b"started\n"
        leader.wait(5)
        found = find_leftovers([record])
        assert len(found) == 1 and found[0] != leader.pid
        assert kill_leftovers([record]) == found
        assert _wait_gone(found)
    finally:
        kill_leftovers([ChildRecord("t1", leader.pid, 0, "", mark)])
        assert leader.stdout is not None
        leader.stdout.close()


def test_live_leader_group_is_found_without_a_mark() -> None:
    """A program that scrubbed its environment is still found through its recorded group."""
    child = _spawn(_SLEEP)
    try:
        record = describe("t2", child.pid, new_mark())
        assert record is not None
        assert find_leftovers([record]) == [child.pid]
        kill_leftovers([record])
        child.wait(5)
    finally:
        child.kill()
        child.wait(5)


def test_reused_pid_is_never_hit() -> None:
    """Same pid and group, another start time (the pid was reused): not ours, left alone."""
    child = _spawn(_SLEEP)
    try:
        ticks = start_ticks(child.pid)
        assert ticks is not None
        stale = ChildRecord("t3", child.pid, ticks - 1, boot_id(), new_mark())
        other_boot = ChildRecord("t3", child.pid, ticks, "another-boot", new_mark())
        assert find_leftovers([stale, other_boot]) == []
        assert kill_leftovers([stale]) == []
        assert child.poll() is None
    finally:
        child.kill()
        child.wait(5)


def test_nothing_recorded_finds_nothing() -> None:
    assert find_leftovers([]) == []
