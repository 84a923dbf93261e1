"""Signals to a whole process group, and knowing when every process of the group is gone.

Process- and command-mode tasks start their child with ``start_new_session=True``, so the child
leads a new session and process group whose id is its pid. Everything it forks stays in that
group unless it deliberately escapes (``setsid``), so one ``killpg`` reaches the whole task.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import time
from pathlib import Path

_PROC = Path("/proc")
_POLL = 0.01
_POLL_MAX = 0.2


def group_members(pgid: int) -> list[int]:
    """Pids of the live (not zombie) processes in group ``pgid``.

    Zombies are left out: an orphaned grandchild is reaped by pid 1, and in a container pid 1
    may never reap it, yet a zombie runs nothing and holds no resources worth waiting for.
    """
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return []
    except PermissionError:
        pass  # the group exists, owned by someone else: let the scan below decide
    if not _PROC.is_dir():  # not Linux: trust killpg alone
        return [pgid]
    members: list[int] = []
    for entry in os.scandir(_PROC):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue  # exited while we looked
        # The command name (field 2) is in parentheses and may contain spaces or ')'.
        fields = stat[stat.rfind(")") + 2 :].split()
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state not in ("Z", "X"):
            members.append(int(entry.name))
    return members


class ProcessGroup:
    """The process group a task's child leads."""

    def __init__(self, pgid: int) -> None:
        self.pgid = pgid

    def send(self, sig: int) -> bool:
        """Signal every process of the group; False once the group is gone."""
        try:
            os.killpg(self.pgid, sig)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # members we may not signal (a setuid program): the others got it
        return True

    def pause(self) -> None:
        self.send(signal.SIGSTOP)

    def resume(self) -> None:
        self.send(signal.SIGCONT)

    def alive(self) -> bool:
        return bool(group_members(self.pgid))

    def ask_to_stop(self) -> None:
        """SIGTERM, then SIGCONT: a stopped (paused) process only acts on SIGTERM once continued."""
        if self.send(signal.SIGTERM):
            self.send(signal.SIGCONT)

    async def wait_gone(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        pause = _POLL
        while self.alive():
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(pause)
            # A group that takes its time is polled less often: each look scans /proc.
            pause = min(pause * 1.5, _POLL_MAX)
        return True

    async def stop(self, grace: float) -> None:
        """SIGTERM the group, SIGKILL what is left after ``grace`` seconds, wait until all gone."""
        if not self.alive():
            return
        self.ask_to_stop()
        if await self.wait_gone(grace):
            return
        self.kill()
        # SIGKILL cannot be caught; a process in uninterruptible sleep (D state) still takes a
        # moment to go, so keep waiting rather than report a stop that has not happened.
        while not await self.wait_gone(5.0):
            self.kill()

    def kill(self) -> None:
        if self.alive():
            self.send(signal.SIGKILL)

    def stop_in_background(self, grace: float) -> None:
        """SIGTERM now and SIGKILL after ``grace`` from a thread, for when the event loop is ending.

        The thread is not a daemon on purpose: an exiting server waits for it, so no task process
        outlives the server by more than the grace period.
        """
        if not self.alive():
            return
        self.ask_to_stop()

        def finish() -> None:
            deadline = time.monotonic() + grace
            while self.alive() and time.monotonic() < deadline:
                time.sleep(_POLL)
            with contextlib.suppress(OSError):
                self.kill()

        threading.Thread(target=finish, name=f"tasky-stop-{self.pgid}").start()


def describe_exit(returncode: int) -> str:
    """Human text for a child's exit status: ``exited with code 3``, ``was killed by SIGSEGV``."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name} (signal {-returncode})"
    return f"exited with code {returncode}"
