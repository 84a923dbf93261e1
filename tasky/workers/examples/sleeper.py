"""Sleeper: sleeps and reports progress, to show long-running tasks and their control."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tasky.workers.base import Worker
from tasky.workers.context import AsyncTaskContext


class SleeperConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seconds: float = Field(default=60, ge=0, le=7 * 24 * 3600, description="How long to sleep.")


class Sleeper(Worker):
    name = "Sleeper"
    description = "Sleeps for a minute. This is to showcase long running tasks."
    usage = "Give seconds to sleep another length of time; pause stops the clock."
    Config = SleeperConfig
    max_tasks = 10
    actions = frozenset({"cancel", "pause", "resume"})
    idempotent = True

    async def perform(self, config: SleeperConfig, task: AsyncTaskContext) -> dict[str, Any]:
        total = config.seconds
        done = 0.0
        task.progress(0.0, f"0 of {total:g} s")
        while done < total:
            step = min(1.0, total - done)
            await task.sleep(step)
            done += step
            task.progress(done / total, f"{done:g} of {total:g} s")
            task.log(f"slept {done:g} of {total:g} seconds")
        return {"slept_seconds": total}
