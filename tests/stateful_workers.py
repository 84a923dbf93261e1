"""Workers whose runs the state-machine test ends when it chooses (tests/test_engine_stateful.py).

Each run waits at a gate, one per (task id, attempt), until the machine tells it how to end:
return a result, or raise. The gates also tell the machine which attempts are running.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from tasky.workers.base import Worker
from tasky.workers.context import AsyncTaskContext

Verdict = Literal["succeed", "fail"]


class Gates:
    def __init__(self) -> None:
        self._open: dict[tuple[str, int], tuple[asyncio.Future[Verdict], asyncio.Task[Any]]] = {}

    def reset(self) -> None:
        self._open.clear()

    async def wait(self, task_id: str, attempt: int) -> Verdict:
        key = (task_id, attempt)
        if key in self._open:
            raise AssertionError(f"attempt {attempt} of task {task_id} runs twice")
        verdict: asyncio.Future[Verdict] = asyncio.get_running_loop().create_future()
        current = asyncio.current_task()
        assert current is not None
        self._open[key] = (verdict, current)
        try:
            return await verdict
        finally:
            del self._open[key]

    def running(self) -> list[tuple[str, int]]:
        """(task id, attempt) of the runs waiting to be told how to end, in the order they
        started (not by id: ids are random, and the machine picks from this list by index)."""
        return [key for key, (verdict, _) in self._open.items() if not verdict.done()]

    def end(self, task_id: str, attempt: int, verdict: Verdict) -> None:
        self._open[(task_id, attempt)][0].set_result(verdict)

    def parks(self, task: asyncio.Task[Any]) -> bool:
        """``task`` is a run waiting at its gate (it does nothing until told)."""
        return any(t is task and not v.done() for v, t in self._open.values())


GATES = Gates()


class Count(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n: int = 0


async def _run(task: AsyncTaskContext) -> dict[str, int]:
    if await GATES.wait(task.id, task.attempt) == "fail":
        raise RuntimeError("told to fail")
    return {"attempt": task.attempt}


class Steady(Worker):
    """Two at a time; can pause; safe to run again after a crash, so recovery re-queues it."""

    name = "Steady"
    Config = Count
    max_tasks = 2
    actions = frozenset({"cancel", "pause", "resume"})
    idempotent = True

    async def perform(self, config: Count, task: AsyncTaskContext) -> Any:
        return await _run(task)


class Flaky(Worker):
    """One at a time; a failed attempt is retried once, at once; cannot pause a running task;
    not safe to re-run, so recovery fails it."""

    name = "Flaky"
    Config = Count
    max_tasks = 1
    retries = 1
    retry_backoff = 0.0
    idempotent = False

    async def perform(self, config: Count, task: AsyncTaskContext) -> Any:
        return await _run(task)


WORKERS: dict[str, type[Worker]] = {w.name: w for w in (Steady, Flaky)}
