"""Workers the benchmark drives (``tasky serve --workers bench.workers``).

They do as little as possible so that what is measured is Tasky's own overhead.
"""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, ConfigDict, Field

from tasky.workers.base import EmptyConfig, Worker
from tasky.workers.context import AsyncTaskContext

__all__ = ["Blocker", "Nap", "Noop"]


class Noop(Worker):
    """Returns at once: end-to-end throughput and dispatch latency."""

    name = "Noop"
    description = "Does nothing and completes."
    max_tasks = 1000
    idempotent = True

    async def perform(self, config: EmptyConfig, task: AsyncTaskContext) -> None:
        return None


class Blocker(Worker):
    """Holds its only slot until cancelled, so every submit stays Queued: submit throughput."""

    name = "Blocker"
    description = "Holds its single slot until cancelled."
    max_tasks = 1

    async def perform(self, config: EmptyConfig, task: AsyncTaskContext) -> None:
        await asyncio.Event().wait()


class NapConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seconds: float = Field(default=60, ge=0, le=3600)


class Nap(Worker):
    """Sleeps (cancellable, pausable): memory with many tasks running at once."""

    name = "Nap"
    description = "Sleeps for the given seconds."
    Config = NapConfig
    max_tasks = 5000
    actions = frozenset({"cancel", "pause", "resume"})

    async def perform(self, config: NapConfig, task: AsyncTaskContext) -> None:
        await task.sleep(config.seconds)
