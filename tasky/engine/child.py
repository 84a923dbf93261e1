"""What process and command modes share: a child in its own process group, driven by signals.

:class:`ChildHandle` is the :class:`RunHandle` of such a run. Cancel and timeout send SIGTERM to
the whole group and SIGKILL after the worker's grace period; pause and resume send SIGSTOP and
SIGCONT. The outcome is reported only once every process of the group is gone, so a task is never
Canceled while some of its processes still run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tasky.engine.procgroup import ProcessGroup
from tasky.engine.runner import RunHandle
from tasky.store.records import TaskRecord
from tasky.workers.context import AsyncTaskContext

# Longest log line kept; longer output is cut into pieces of this size.
MAX_LINE_BYTES = 16 * 1024
# After the group is gone, how long to wait for the pipes to close: a process that escaped the
# group (setsid) may hold them open forever, and its output is not the task's to wait for.
_DRAIN_SECONDS = 2.0
# Variables a child inherits from the server; everything else (tokens, credentials) stays out.
INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "USER", "LOGNAME")

LineSink = Callable[[str], None]


def child_env(
    extra: Mapping[str, str] | None = None, inherit: Sequence[str] = INHERITED_ENV
) -> dict[str, str]:
    env = {name: os.environ[name] for name in inherit if name in os.environ}
    env.update(extra or {})
    return env


class ChildHandle(RunHandle):
    """Control of a task whose work runs in a child process group."""

    def __init__(self, ctx: AsyncTaskContext, record: TaskRecord, grace: float) -> None:
        super().__init__(ctx, record)
        self.actx = ctx
        self.grace = grace
        self.group: ProcessGroup | None = None
        self._stopper: asyncio.Task[None] | None = None

    def attach(self, pid: int) -> None:
        """The child exists: apply what was asked while it was starting."""
        self.group = ProcessGroup(pid)
        if self.actx.cancelled:
            self._stop()
        elif self.actx.paused:
            self.group.pause()

    def cancel(self, reason: str) -> None:
        if self.actx.cancelled:
            return
        self.actx._cancel(reason)
        self._stop()

    def pause(self) -> None:
        self.actx._pause()
        if self.group is not None:
            self.group.pause()

    def resume(self) -> None:
        self.actx._resume()
        if self.group is not None:
            self.group.resume()

    def abandon(self) -> None:
        """Server shutdown: the loop is ending, so stopping must not depend on it."""
        self.abandoned = True
        if not self.actx.cancelled:
            self.actx._cancel("the server is stopping")
        if self.group is not None:
            self.group.stop_in_background(self.grace)

    def _stop(self) -> None:
        if self.group is not None and self._stopper is None:
            self._stopper = asyncio.get_running_loop().create_task(self.group.stop(self.grace))

    async def wait_group_gone(self) -> None:
        """After the leader exited: end what it left in its group and wait until all is gone."""
        if self.group is None:
            return
        if self._stopper is not None:
            await self._stopper
        # Leftovers of a finished leader (a backgrounded `cmd &`) belong to the task: they go too.
        await self.group.stop(self.grace)


async def read_lines(stream: asyncio.StreamReader, on_line: Callable[[bytes], None]) -> None:
    """Call ``on_line`` with each line (without the newline); overlong lines come in pieces."""
    cut = False
    while True:
        try:
            raw = await stream.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                on_line(exc.partial)
            return
        except asyncio.LimitOverrunError as exc:
            on_line(await stream.readexactly(exc.consumed))
            cut = True
            continue
        if not (cut and raw == b"\n"):  # the newline that ended an overlong line
            on_line(raw[:-1])
        cut = False


def text_of(raw: bytes) -> str:
    if len(raw) > MAX_LINE_BYTES:
        raw = raw[:MAX_LINE_BYTES]
    return raw.decode("utf-8", "replace").rstrip("\r")


async def finish_child(
    handle: ChildHandle, proc: asyncio.subprocess.Process, readers: Sequence[asyncio.Task[Any]]
) -> int:
    """Wait for the child to exit, for its group to be gone and for its output; its exit code."""
    try:
        returncode = await proc.wait()
        await handle.wait_group_gone()
        await drain(readers)
    except asyncio.CancelledError:
        # The event loop is ending (server stopping) while the child still runs: kill the group
        # now and reap the child, so nothing outlives the server and no pipe is left open.
        if handle.group is not None:
            handle.group.kill()
        for task in readers:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(proc.wait(), 5)
        raise
    return returncode


async def drain(readers: Sequence[asyncio.Task[Any]]) -> None:
    """Let the readers finish what is in the pipes; give up on pipes held by escaped processes."""
    if not readers:
        return
    _done, pending = await asyncio.wait(readers, timeout=_DRAIN_SECONDS)
    for task in pending:
        task.cancel()
    for task in readers:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
