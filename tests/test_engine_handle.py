"""A run's handle and its outcome: why the work was told to stop decides its status, not how the
reason reads."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tasky import AsyncTaskContext, TaskContext, worker
from tasky.engine.handle import RunHandle, RunOutcome, StopCause
from tasky.engine.modes import start_run
from tasky.states import Status
from tasky.store.records import ChildRecord, TaskRecord
from tasky.workers.base import EmptyConfig, Worker


class Sink:
    """Where the run reports; these runs start no child process."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def progress(self, task_id: str, fraction: float | None, message: str | None) -> None:
        pass

    def log(self, task_id: str, line: str) -> None:
        self.lines.append(line)

    def child_started(self, child: ChildRecord) -> None:
        raise AssertionError("no child process here")

    def child_gone(self, task_id: str) -> None:
        raise AssertionError("no child process here")


@worker("WaitAsync")
async def wait_async(config: Any, task: AsyncTaskContext) -> str:
    await task.sleep(30)
    return "woke"


@worker("WaitThread")
def wait_thread(config: Any, task: TaskContext) -> str:
    task.sleep(30)
    return "woke"


@worker("FinishAnyway")
def finish_anyway(config: Any, task: TaskContext) -> str:
    """Ignores the stop: returns a result after it was told to end."""
    while not task.cancelled:
        time.sleep(0.01)
    return "done late"


async def _run(cls: type[Worker], *stops: tuple[str, str]) -> tuple[RunHandle, RunOutcome]:
    """Start ``cls``, then call each (handle method, reason) of ``stops``; the outcome."""
    record = TaskRecord(
        id="a" * 32, worker=cls.name, status=Status.RUNNING, config={}, created_at=0
    )
    done: asyncio.Future[RunOutcome] = asyncio.get_running_loop().create_future()
    with ThreadPoolExecutor(1) as pool:
        handle = start_run(
            cls(),
            record,
            EmptyConfig(),
            sink=Sink(),
            pool=pool,
            roots=(),
            on_done=done.set_result,
        )
        await asyncio.sleep(0.05)
        for method, reason in stops:
            getattr(handle, method)(reason)
        outcome = await asyncio.wait_for(done, 10)
    return handle, outcome


@pytest.mark.parametrize("cls", [wait_async, wait_thread, finish_anyway])
async def test_a_timeout_fails_the_attempt(cls: type[Worker]) -> None:
    handle, outcome = await _run(cls, ("time_out", "timed out after 0.05 s"))
    assert handle.stop_cause is StopCause.TIMED_OUT
    assert outcome == RunOutcome(Status.FAILED, None, "timed out after 0.05 s")


@pytest.mark.parametrize("cls", [wait_async, wait_thread])
async def test_a_cancel_cancels_whatever_its_reason_says(cls: type[Worker]) -> None:
    handle, outcome = await _run(cls, ("cancel", "timed out waiting for the operator"))
    assert handle.stop_cause is StopCause.CANCELED
    assert outcome == RunOutcome(Status.CANCELED, None, "timed out waiting for the operator")


async def test_work_that_finishes_after_a_cancel_completes() -> None:
    _, outcome = await _run(finish_anyway, ("cancel", "canceled"))
    assert outcome == RunOutcome.completed("done late")


async def test_the_first_stop_decides() -> None:
    handle, outcome = await _run(wait_async, ("time_out", "timed out after 1 s"), ("cancel", "x"))
    assert handle.stop_cause is StopCause.TIMED_OUT
    assert outcome == RunOutcome.failed("timed out after 1 s")
