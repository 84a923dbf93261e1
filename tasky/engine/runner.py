"""Runs one attempt of a task in the worker's execution mode and reports its outcome.

The outcome is ``(status, result, error)``: Completed with a JSON result, Failed with an error
text, or Canceled. Each mode gets a handle with the same controls (cancel, pause, resume), so the
engine does not care how the work runs. Process and command modes plug in here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import Any, Protocol

import orjson
from pydantic import BaseModel

from tasky.engine.tracebacks import format_failure
from tasky.net.addresses import DEFAULT_POLICY, OutboundPolicy
from tasky.states import Status
from tasky.store.records import ChildRecord, TaskRecord
from tasky.workers.base import Worker
from tasky.workers.context import (
    AsyncTaskContext,
    ContextSink,
    TaskCancelled,
    TaskContext,
)

Outcome = tuple[Status, Any, str | None]
TIMEOUT_PREFIX = "timed out"


class Deadline:
    """A task's timeout clock. It stops while the task is paused: pausing is not running."""

    def __init__(self, seconds: float, on_expiry: Callable[[], Any]) -> None:
        self._left = seconds
        self._on_expiry = on_expiry
        self._timer: asyncio.TimerHandle | None = None
        self._armed_at = 0.0
        self.start()

    def start(self) -> None:
        if self._timer is None:
            loop = asyncio.get_running_loop()
            self._armed_at = loop.time()
            self._timer = loop.call_later(max(self._left, 0.0), self._on_expiry)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._left -= asyncio.get_running_loop().time() - self._armed_at


class RunSink(ContextSink, Protocol):
    """Where a run reports: its progress and log, and the child processes it starts."""

    def child_started(self, child: ChildRecord) -> None:
        """A task's child process group exists (remembered so a crash cannot orphan it)."""

    def child_gone(self, task_id: str) -> None:
        """That task's child process group is gone."""


class RunHandle:
    """Control of one running attempt, whatever its mode."""

    def __init__(self, ctx: AsyncTaskContext | TaskContext, record: TaskRecord) -> None:
        self.ctx = ctx
        self.record = record
        self.deadline: Deadline | None = None
        self.abandoned = False
        # A failed Python worker's traceback (capped), set before the outcome is reported: the
        # engine stores it with the attempt.
        self.traceback: str | None = None
        # How long a stop waits after asking the work to end before ending it by force.
        self.stop_grace = 0.0
        # Set by the engine once the attempt's outcome is durably recorded.
        self.settled = asyncio.Event()
        self._task: asyncio.Future[Any] | None = None

    def cancel(self, reason: str) -> None:
        if self.ctx.cancelled:
            return
        self.ctx._cancel(reason)
        if isinstance(self.ctx, AsyncTaskContext) and self._task is not None:
            self._task.cancel()

    def pause(self) -> None:
        self.ctx._pause()

    def resume(self) -> None:
        self.ctx._resume()

    def abandon(self, now: bool = False) -> None:
        """Server shutdown: stop what can be stopped, record nothing (recovery decides).

        ``now``: without a grace period (only child processes have one).
        """
        self.abandoned = True
        self.cancel("the server is stopping")

    async def finished(self) -> None:
        """Wait until the work has stopped and its outcome is recorded."""
        await self.settled.wait()


def _outcome_of_error(exc: BaseException, ctx: AsyncTaskContext | TaskContext) -> Outcome:
    reason = ctx.cancel_reason
    if reason is not None and isinstance(exc, TaskCancelled | asyncio.CancelledError):
        if reason.startswith(TIMEOUT_PREFIX):
            return Status.FAILED, None, reason
        return Status.CANCELED, None, reason
    if isinstance(exc, asyncio.CancelledError):
        return Status.CANCELED, None, "canceled"
    text = str(exc) or type(exc).__name__
    return Status.FAILED, None, f"{type(exc).__name__}: {text}"


def _outcome_of_result(value: Any, ctx: AsyncTaskContext | TaskContext) -> Outcome:
    reason = ctx.cancel_reason
    if reason is not None and reason.startswith(TIMEOUT_PREFIX):
        # Finished, but after its deadline: the timeout stands.
        return Status.FAILED, None, reason
    try:
        orjson.dumps(value)
    except TypeError as exc:
        return Status.FAILED, None, f"the result is not JSON: {exc}"
    return Status.COMPLETED, value, None


def start_run(
    worker: Worker,
    record: TaskRecord,
    model: BaseModel,
    *,
    sink: RunSink,
    pool: Executor,
    roots: tuple[Path, ...],
    on_done: Callable[[Outcome], Any],
    outbound: OutboundPolicy = DEFAULT_POLICY,
) -> RunHandle:
    mode = worker.execution_mode()
    if mode == "process":
        # Imported here: those modules build on RunHandle and the outcome helpers above.
        from tasky.engine.process import start_process_run

        return start_process_run(
            worker, record, model, sink=sink, roots=roots, on_done=on_done, outbound=outbound
        )
    if mode == "command":
        from tasky.engine.command import start_command_run

        return start_command_run(worker, record, model, sink=sink, roots=roots, on_done=on_done)
    loop = asyncio.get_running_loop()
    ctx: AsyncTaskContext | TaskContext
    if mode == "async":
        ctx = AsyncTaskContext(record.id, record.attempt, worker.name, sink)
    elif mode == "thread":
        ctx = TaskContext(record.id, record.attempt, worker.name, sink)
    else:
        raise ValueError(f"worker {worker.name}: execution mode {mode!r} is not available")
    ctx.roots = roots
    ctx.outbound = outbound
    handle = RunHandle(ctx, record)

    def done(future: asyncio.Future[Any]) -> None:
        if future.cancelled():
            outcome = _outcome_of_error(asyncio.CancelledError(), ctx)
        elif (exc := future.exception()) is not None:
            outcome = _outcome_of_error(exc, ctx)
            if outcome[0] is Status.FAILED and not isinstance(
                exc, TaskCancelled | asyncio.CancelledError
            ):
                handle.traceback = format_failure(exc)
        else:
            outcome = _outcome_of_result(future.result(), ctx)
        on_done(outcome)

    if isinstance(ctx, AsyncTaskContext):
        handle._task = loop.create_task(worker.perform(model, ctx))
    else:
        handle._task = loop.run_in_executor(pool, worker.perform, model, ctx)
    handle._task.add_done_callback(done)
    return handle
