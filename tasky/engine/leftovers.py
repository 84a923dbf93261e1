"""Task processes that outlived a killed server: found again at the next start, and ended.

A SIGKILLed server cannot stop what its tasks started: a command's program dies with it (its
parent-death signal), but whatever the program started lives on. So each task child carries a
mark in its environment, which everything it forks inherits, and the store keeps, for every
running child, its process group, the leader's start time, the boot it started in and the mark.
At the next start, recovery ends every process that carries a recorded mark, and every process
of a recorded group whose leader is still the very process that was recorded (same start time,
same boot). A pid or group id reused since by an unrelated program is never hit: it carries no
mark and its leader started at another time.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
from collections.abc import Iterable
from pathlib import Path

from tasky.store.records import ChildRecord

# The environment variable that marks a task's processes.
MARK_VAR = "TASKY_RUN_MARK"
_PROC = Path("/proc")


def new_mark() -> str:
    return secrets.token_hex(16)


def boot_id() -> str:
    try:
        return (_PROC / "sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _stat_fields(pid: int | str) -> list[str] | None:
    """Fields 3 onwards of /proc/PID/stat (the command name may hold spaces or ')')."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return stat[stat.rfind(")") + 2 :].split()


def start_ticks(pid: int) -> int | None:
    """When the process started, in clock ticks since boot (field 22 of /proc/PID/stat)."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def process_state(pid: int) -> str | None:
    """The process's state letter (field 3 of /proc/PID/stat: R, S, ..., Z for one that ended
    and waits to be reaped); None where /proc does not tell."""
    fields = _stat_fields(pid)
    return fields[0] if fields else None


def describe(task_id: str, pid: int, mark: str) -> ChildRecord | None:
    """The record of a just-started child that leads its own group; None where /proc is absent."""
    ticks = start_ticks(pid)
    if ticks is None:
        return None
    return ChildRecord(task_id, pid, ticks, boot_id(), mark)


def _environ(pid: str) -> list[bytes]:
    try:
        return (_PROC / pid / "environ").read_bytes().split(b"\0")
    except OSError:
        return []


def find_leftovers(records: Iterable[ChildRecord]) -> list[int]:
    """Pids of the live processes that belong to the recorded task children."""
    boot = boot_id()
    marks: set[bytes] = set()
    groups: set[int] = set()
    for record in records:
        marks.add(f"{MARK_VAR}={record.mark}".encode())
        if record.boot_id == boot and start_ticks(record.pgid) == record.start_ticks:
            groups.add(record.pgid)
    if not marks or not _PROC.is_dir():
        return []
    spared = {os.getpid(), os.getppid()}
    found: list[int] = []
    for entry in os.scandir(_PROC):
        if not entry.name.isdigit() or int(entry.name) in spared:
            continue
        fields = _stat_fields(entry.name)
        if fields is None or fields[0] in ("Z", "X"):
            continue
        if int(fields[2]) in groups or not marks.isdisjoint(_environ(entry.name)):
            found.append(int(entry.name))
    return found


def kill_leftovers(records: Iterable[ChildRecord]) -> list[int]:
    """SIGKILL every leftover process of the recorded children; the pids that were signalled."""
    pids = find_leftovers(records)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return pids
