"""Workers that fail on purpose, one per Python execution mode, for the traceback and log tests.

Each holds a secret in a local variable when it fails: a traceback must never show it. ``links``
chains that many earlier exceptions to the failure, to make a traceback far larger than the cap
(recursion would not do: tracebacks fold repeated frames into one line).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from tasky import AsyncTaskContext, ControlStr, TaskContext, Worker

SECRET = "hunter2-not-in-any-traceback"


class BreakConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Control characters allowed: the tests check that they come out escaped.
    message: ControlStr = "broken on purpose"
    links: int = Field(default=0, ge=0, le=1000)


def innermost_failure(message: str, cause: BaseException | None) -> None:
    raise ValueError(message) from cause


def fail(config: BreakConfig) -> None:
    password = SECRET  # a local that the formatting of frames must leave out
    cause: BaseException | None = None
    for i in range(config.links):
        try:
            raise LookupError(f"link {i} of a long chain of causes") from cause
        except LookupError as caught:
            cause = caught
    innermost_failure(config.message, cause)
    del password


class BreakAsync(Worker):
    name = "BreakAsync"
    Config = BreakConfig

    async def perform(self, config: BreakConfig, task: AsyncTaskContext) -> None:
        fail(config)


class BreakThread(Worker):
    name = "BreakThread"
    Config = BreakConfig
    mode = "thread"

    def perform(self, config: BreakConfig, task: TaskContext) -> None:
        fail(config)


class BreakProcess(Worker):
    name = "BreakProcess"
    Config = BreakConfig
    mode = "process"

    def perform(self, config: BreakConfig, task: TaskContext) -> None:
        fail(config)
