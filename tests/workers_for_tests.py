"""Small workers the tests drive: fast, failing, blocking, thread-mode."""

from __future__ import annotations

import threading
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tasky import AsyncTaskContext, TaskContext, Worker, worker


class EchoConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: Any = None


@worker(
    "Echo",
    description="Returns its config value.",
    config=EchoConfig,
    max_tasks=50,
    idempotent=True,
)
async def echo(config: EchoConfig, task: AsyncTaskContext) -> Any:
    task.log(f"echo {config.value!r}")
    return config.value


class FailConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: str = "boom"
    fail_times: int = Field(default=1_000_000, ge=0)


_fail_counts: dict[str, int] = {}


@worker("Flaky", description="Fails its first fail_times attempts.", config=FailConfig)
async def flaky(config: FailConfig, task: AsyncTaskContext) -> str:
    if task.attempt <= config.fail_times:
        raise RuntimeError(config.message)
    return "ok"


class HoldConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: float = Field(default=30, ge=0)


class Hold(Worker):
    """Async, one at a time, pausable: holds its slot for ``seconds``."""

    name = "Hold"
    description = "Holds one slot for a while."
    Config = HoldConfig
    max_tasks = 1
    actions = frozenset({"cancel", "pause", "resume"})
    idempotent = True

    async def perform(self, config: HoldConfig, task: AsyncTaskContext) -> dict[str, Any]:
        await task.sleep(config.seconds)
        return {"held": config.seconds}


class Spin(Worker):
    """Thread mode: loops with checkpoints until its seconds are up."""

    name = "Spin"
    description = "Busy thread-mode work with checkpoints."
    Config = HoldConfig
    max_tasks = 2
    actions = frozenset({"cancel", "pause", "resume"})

    def perform(self, config: HoldConfig, task: TaskContext) -> dict[str, Any]:
        deadline = time.monotonic() + config.seconds
        steps = 0
        while time.monotonic() < deadline:
            task.checkpoint()
            time.sleep(0.01)
            steps += 1
        return {"steps": steps, "thread": threading.current_thread().name}


class NoPause(Worker):
    """Supports cancel only."""

    name = "NoPause"
    description = "Cannot be paused."
    Config = HoldConfig
    max_tasks = 5

    async def perform(self, config: HoldConfig, task: AsyncTaskContext) -> None:
        await task.sleep(config.seconds)


class MarkConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str
    seconds: float = Field(default=0, ge=0)


class Mark(Worker):
    """Appends its task id to a file (one line per real run: counts runs across crashes)."""

    name = "Mark"
    description = "Records each run in a file, then holds for a while."
    Config = MarkConfig
    max_tasks = 10
    actions = frozenset({"cancel", "pause", "resume"})

    async def perform(self, config: MarkConfig, task: AsyncTaskContext) -> dict[str, Any]:
        with open(config.path, "a") as out:
            out.write(task.id + "\n")
        await task.sleep(config.seconds)
        return {"task": task.id}


class MarkAgain(Mark):
    """Like Mark, but safe to run again after a crash."""

    name = "MarkAgain"
    idempotent = True


__all__ = ["Hold", "Mark", "MarkAgain", "NoPause", "Spin", "echo", "flaky"]
