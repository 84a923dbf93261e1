"""Starts one attempt of a task in its worker's execution mode and returns the run's handle.

Async and thread work runs here, in the server's event loop or its thread pool; process and
command modes run in a child process group (:mod:`tasky.engine.process`,
:mod:`tasky.engine.command`). Every mode reports its :class:`~tasky.engine.handle.RunOutcome`
through ``on_done``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from tasky.engine.command import start_command_run
from tasky.engine.handle import RunHandle, RunOutcome, RunSink
from tasky.engine.process import start_process_run
from tasky.engine.tracebacks import format_failure
from tasky.net.addresses import DEFAULT_POLICY, OutboundPolicy
from tasky.states import Status
from tasky.store.records import TaskRecord
from tasky.workers.base import Worker
from tasky.workers.context import AsyncTaskContext, TaskCancelled, TaskContext


def start_run(
    worker: Worker,
    record: TaskRecord,
    model: BaseModel,
    *,
    sink: RunSink,
    pool: Executor,
    roots: tuple[Path, ...],
    on_done: Callable[[RunOutcome], Any],
    outbound: OutboundPolicy = DEFAULT_POLICY,
) -> RunHandle:
    mode = worker.execution_mode()
    if mode == "process":
        return start_process_run(
            worker, record, model, sink=sink, roots=roots, on_done=on_done, outbound=outbound
        )
    if mode == "command":
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
            outcome = handle.outcome_of_error(asyncio.CancelledError())
        elif (exc := future.exception()) is not None:
            outcome = handle.outcome_of_error(exc)
            if outcome.status is Status.FAILED and not isinstance(
                exc, TaskCancelled | asyncio.CancelledError
            ):
                handle.traceback = format_failure(exc)
        else:
            outcome = handle.outcome_of_result(future.result())
        on_done(outcome)

    if isinstance(ctx, AsyncTaskContext):
        handle._task = loop.create_task(worker.perform(model, ctx))
    else:
        handle._task = loop.run_in_executor(pool, worker.perform, model, ctx)
    handle._task.add_done_callback(done)
    return handle
