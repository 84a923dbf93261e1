"""Workers for the tests of many nodes on one database: each run appends what it did to a file
(the node's pid, the task, the attempt, when it started and ended), so a test can tell which node
ran what, how many ran at once and whether anything ran twice."""

from __future__ import annotations

import asyncio
import os
import time

from pydantic import BaseModel, ConfigDict, Field

from tasky import AsyncTaskContext, Worker


class StintConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str
    # How long the first attempt takes, and every later one.
    first: float = Field(default=0.0, ge=0)
    seconds: float = Field(default=0.0, ge=0)


def _note(path: str, *fields: object) -> None:
    with open(path, "a") as out:  # one short write per line: lines of nodes never interleave
        out.write(" ".join(map(str, fields)) + "\n")


class Stint(Worker):
    """Three at once over the whole cluster; not safe to run again after its node died."""

    name = "Stint"
    description = "Notes its start and end in a file, holding a slot in between."
    Config = StintConfig
    max_tasks = 3
    actions = frozenset({"cancel"})

    async def perform(self, config: StintConfig, task: AsyncTaskContext) -> dict[str, int]:
        _note(config.path, "start", task.id, task.attempt, os.getpid(), time.time())
        await asyncio.sleep(config.first if task.attempt == 1 else config.seconds)
        _note(config.path, "end", task.id, task.attempt, os.getpid(), time.time())
        return {"pid": os.getpid()}


class StintAgain(Stint):
    """Like Stint, and safe to run again: a dead node's task is re-queued."""

    name = "StintAgain"
    idempotent = True


class Single(Stint):
    """One at a time over the whole cluster: its start order is the queue's order."""

    name = "Single"
    max_tasks = 1
    idempotent = True


__all__ = ["Single", "Stint", "StintAgain"]
