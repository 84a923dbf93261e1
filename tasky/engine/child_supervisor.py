"""Runs in the server: what process and command modes share to drive a task's child process.

The child leads its own process group (what runs inside a process-mode task is
:mod:`tasky.engine.task_process`). :class:`ChildHandle` is the :class:`RunHandle` of such a run.
Cancel and timeout send SIGTERM to the whole group and SIGKILL after the worker's grace period;
pause and resume send SIGSTOP and SIGCONT. The outcome is reported only once every process of
the group is gone, so a task is never Canceled while some of its processes still run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import deque
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any

from tasky.engine.handle import RunHandle, RunOutcome, RunSink
from tasky.engine.leftovers import MARK_VAR, describe, new_mark
from tasky.engine.procgroup import ProcessGroup
from tasky.store.records import TaskRecord
from tasky.workers.base import Worker
from tasky.workers.context import AsyncTaskContext

# Longest log line kept; longer output is cut into pieces of this size.
MAX_LINE_BYTES = 16 * 1024
_CHUNK = 1 << 16
# After the group is gone, how long to wait for the pipes to close: a process that escaped the
# group (setsid) may hold them open forever, and its output is not the task's to wait for.
_DRAIN_SECONDS = 2.0
# Variables a child inherits from the server; everything else (tokens, credentials) stays out.
INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "USER", "LOGNAME")


def child_env(
    extra: Mapping[str, str] | None = None, inherit: Sequence[str] = INHERITED_ENV
) -> dict[str, str]:
    env = {name: os.environ[name] for name in inherit if name in os.environ}
    env.update(extra or {})
    return env


class ChildHandle(RunHandle):
    """Control of a task whose work runs in a child process group."""

    def __init__(
        self, ctx: AsyncTaskContext, record: TaskRecord, grace: float, sink: RunSink
    ) -> None:
        super().__init__(ctx, record)
        self.actx = ctx
        self.grace = self.stop_grace = grace
        self.sink = sink
        # Every process of the task inherits this mark, so a restart after a crash finds them.
        self.mark = new_mark()
        self.group: ProcessGroup | None = None
        self._stopper: asyncio.Task[None] | None = None
        # What the child says reaches the task through these, at a bounded rate.
        self.log = LineGate(ctx.log)
        self.progress = ProgressGate(ctx.progress)

    def flush_output(self) -> None:
        """The run is over: pass on the held back progress and log lines."""
        self.progress.flush()
        self.log.flush()

    def child_env(self, extra: Mapping[str, str]) -> dict[str, str]:
        """The environment of the task's child: the inherited names, ``extra`` and the mark."""
        return child_env({**extra, MARK_VAR: self.mark})

    def attach(self, pid: int) -> None:
        """The child exists: remember it, apply what was asked while it was starting."""
        self.group = ProcessGroup(pid)
        child = describe(self.record.id, pid, self.mark)
        if child is not None:
            self.sink.child_started(child)
        if self.actx.cancelled:
            self._stop_group()
        elif self.actx.paused:
            self.group.pause()

    def _end_work(self) -> None:
        self._stop_group()

    def pause(self) -> None:
        self.actx._pause()
        if self.group is not None:
            self.group.pause()

    def resume(self) -> None:
        self.actx._resume()
        if self.group is not None:
            self.group.resume()

    def abandon(self, now: bool = False) -> None:
        """Server shutdown: the loop is ending, so stopping must not depend on it.

        ``now`` (a second signal): SIGKILL right after SIGTERM, without the worker's grace.
        """
        self.abandoned = True
        if not self.actx.cancelled:
            self.actx._cancel("the server is stopping")
        if self.group is not None:
            self.group.stop_in_background(0.0 if now else self.grace)

    def _stop_group(self) -> None:
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


async def read_lines(
    stream: asyncio.StreamReader, on_line: Callable[[bytes], None], max_line: int = MAX_LINE_BYTES
) -> None:
    """Call ``on_line`` with each line (without the newline); longer lines come in pieces.

    Reads in chunks and splits them here: a chatty child produces lines far faster than a
    readline() per line could take them, and the event loop must stay responsive meanwhile.
    """
    parts: list[bytes] = []
    size = 0
    while chunk := await stream.read(_CHUNK):
        lines = chunk.split(b"\n")
        if len(lines) > 1:
            if parts:
                parts.append(lines[0])
                lines[0] = b"".join(parts)
                parts, size = [], 0
            for raw in lines[:-1]:
                for at in range(0, max(len(raw), 1), max_line):
                    on_line(raw[at : at + max_line])
            lines = lines[-1:]
        if lines[0]:
            parts.append(lines[0])
            size += len(lines[0])
            if size >= max_line:
                joined = b"".join(parts)
                cut = len(joined) - len(joined) % max_line
                for at in range(0, cut, max_line):
                    on_line(joined[at : at + max_line])
                rest = joined[cut:]
                parts, size = ([rest], len(rest)) if rest else ([], 0)
        await asyncio.sleep(0)  # read() does not yield while data is buffered: let others run
    if parts:
        on_line(b"".join(parts))


class LineGate:
    """Passes log lines on at a bounded rate, so a chatty child cannot swamp the server.

    Within the rate (with a burst allowance) every line goes through. Beyond it, lines are
    counted and only the last ``tail`` are kept; when the rate allows again (or at the end of
    the run) a marker line says how many were not kept, followed by those last lines.
    """

    def __init__(
        self,
        emit: Callable[[str], None],
        rate: float = 5000.0,
        burst: int = 20_000,
        tail: int = 100,
    ) -> None:
        self._emit = emit
        self._rate = rate
        self._burst = burst
        self._tokens = float(burst)
        self._stamp = time.monotonic()
        self._skipped = 0
        self._tail: deque[str] = deque(maxlen=tail)
        self._timer: asyncio.TimerHandle | None = None

    def __call__(self, line: str) -> None:
        self._refill()
        if self._skipped and self._tokens >= len(self._tail) + 1:
            self.flush()
        if not self._skipped and self._tokens >= 1:
            self._tokens -= 1
            self._emit(line)
            return
        self._skipped += 1
        self._tail.append(line)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(1.0, self._tick)

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now

    def _tick(self) -> None:
        self._timer = None
        self._refill()
        if self._skipped and self._tokens >= len(self._tail) + 1:
            self.flush()
        elif self._skipped:
            self._timer = asyncio.get_running_loop().call_later(1.0, self._tick)

    def flush(self) -> None:
        """Report what was skipped, then the last skipped lines."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._skipped:
            return
        hidden = self._skipped - len(self._tail)
        if hidden:
            self._emit(
                f"[tasky] {hidden} lines not kept: output came faster than {self._rate:g} lines/s"
            )
        for line in self._tail:
            self._emit(line)
        self._tokens -= len(self._tail) + 1
        self._skipped = 0
        self._tail.clear()


class ProgressGate:
    """Passes progress on at most every ``every`` seconds; the latest value is never lost."""

    def __init__(
        self, emit: Callable[[float | None, str | None], None], every: float = 0.1
    ) -> None:
        self._emit = emit
        self._every = every
        self._last = 0.0
        self._pending: tuple[float | None, str | None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    def __call__(self, fraction: float | None, message: str | None) -> None:
        self._pending = (fraction, message)
        wait = self._last + self._every - time.monotonic()
        if wait <= 0:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(wait, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending, self._pending = self._pending, None
        if pending is not None:
            self._last = time.monotonic()
            self._emit(*pending)


def text_of(raw: bytes) -> str:
    return raw[:MAX_LINE_BYTES].decode("utf-8", "replace").rstrip("\r")


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


def launch(
    worker: Worker,
    record: TaskRecord,
    *,
    sink: RunSink,
    roots: tuple[Path, ...],
    on_done: Callable[[RunOutcome], Any],
    body: Callable[[ChildHandle], Coroutine[Any, Any, RunOutcome]],
    failure: str,
) -> ChildHandle:
    """Start ``body(handle)`` as a task of the loop; report its outcome through ``on_done``."""
    ctx = AsyncTaskContext(record.id, record.attempt, worker.name, sink)
    ctx.roots = roots
    handle = ChildHandle(ctx, record, worker.kill_grace, sink)
    run = asyncio.get_running_loop().create_task(body(handle))

    def done(future: asyncio.Future[RunOutcome]) -> None:
        if future.cancelled():
            outcome = RunOutcome.canceled(ctx.cancel_reason or "canceled")
        elif (exc := future.exception()) is not None:
            outcome = RunOutcome.failed(f"{failure}: {type(exc).__name__}: {exc}")
        else:
            outcome = future.result()
        if handle.group is not None:
            sink.child_gone(record.id)
        on_done(outcome)

    run.add_done_callback(done)
    return handle
