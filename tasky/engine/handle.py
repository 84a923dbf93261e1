"""A running attempt's handle and the outcome it ends with, whatever the execution mode.

Each mode (:mod:`tasky.engine.modes`) returns a :class:`RunHandle` with the same controls
(cancel, time out, pause, resume, abandon), so the engine does not care how the work runs, and
reports one :class:`RunOutcome`: Completed with a JSON result, Failed with an error text, or
Canceled. Why the work was told to stop is kept as a :class:`StopCause`, not read back out of
the reason's wording: a timeout fails the attempt (and may retry it), a cancel cancels it.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from tasky.states import Status
from tasky.store.records import ChildRecord, TaskRecord
from tasky.workers.context import (
    AsyncTaskContext,
    ContextSink,
    TaskCancelled,
    TaskContext,
)


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """How one attempt ended: ``result`` when Completed, ``error`` when Failed or Canceled."""

    status: Status
    result: Any = None
    error: str | None = None

    @classmethod
    def completed(cls, result: Any) -> RunOutcome:
        return cls(Status.COMPLETED, result)

    @classmethod
    def failed(cls, error: str) -> RunOutcome:
        return cls(Status.FAILED, error=error)

    @classmethod
    def canceled(cls, reason: str) -> RunOutcome:
        return cls(Status.CANCELED, error=reason)


class StopCause(enum.Enum):
    """Why a run was told to stop; it decides the status the attempt ends with."""

    CANCELED = "canceled"  # a user, a chain or the server's shutdown: Canceled
    TIMED_OUT = "timed out"  # its deadline passed: Failed (retried if retries are left)


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
        # Set by the first request to stop; later ones change nothing.
        self.stop_cause: StopCause | None = None
        # A failed Python worker's traceback (capped), set before the outcome is reported: the
        # engine stores it with the attempt.
        self.traceback: str | None = None
        # How long a stop waits after asking the work to end before ending it by force.
        self.stop_grace = 0.0
        # See settled: made only when asked for.
        self._settled: asyncio.Event | None = None
        self._is_settled = False
        self._task: asyncio.Future[Any] | None = None

    @property
    def settled(self) -> asyncio.Event:
        """Set by the engine once the attempt's outcome is durably recorded. Made when first
        asked for (a stop or a drain waits on it): most attempts end with nobody waiting, and
        an Event made and set per attempt cost ~1 us of the event loop."""
        if self._settled is None:
            self._settled = asyncio.Event()
            if self._is_settled:
                self._settled.set()
        return self._settled

    def settle(self) -> None:
        """The attempt's outcome is recorded (or left to recovery): wake whoever waits."""
        self._is_settled = True
        if self._settled is not None:
            self._settled.set()

    def cancel(self, reason: str) -> None:
        self._stop(reason, StopCause.CANCELED)

    def time_out(self, reason: str) -> None:
        """The deadline passed: stop the work; the attempt fails with ``reason``."""
        self._stop(reason, StopCause.TIMED_OUT)

    def _stop(self, reason: str, cause: StopCause) -> None:
        if self.ctx.cancelled:
            return
        self.stop_cause = cause
        self.ctx._cancel(reason)
        self._end_work()

    def _end_work(self) -> None:
        """Make the work end now that it was told to stop (modes with a child override this)."""
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

    # -- outcomes -------------------------------------------------------------------------------
    def stopped_outcome(self) -> RunOutcome:
        """The outcome of work that ended because it was told to stop."""
        reason = self.ctx.cancel_reason or "canceled"
        if self.stop_cause is StopCause.TIMED_OUT:
            return RunOutcome.failed(reason)
        return RunOutcome.canceled(reason)

    def outcome_of_error(self, exc: BaseException) -> RunOutcome:
        if self.ctx.cancelled and isinstance(exc, TaskCancelled | asyncio.CancelledError):
            return self.stopped_outcome()
        if isinstance(exc, asyncio.CancelledError):
            return RunOutcome.canceled("canceled")
        text = str(exc) or type(exc).__name__
        return RunOutcome.failed(f"{type(exc).__name__}: {text}")

    def outcome_of_result(self, value: Any) -> RunOutcome:
        if self.stop_cause is StopCause.TIMED_OUT:
            # Finished, but after its deadline: the timeout stands.
            return self.stopped_outcome()
        try:
            orjson.dumps(value)
        except TypeError as exc:
            return RunOutcome.failed(f"the result is not JSON: {exc}")
        return RunOutcome.completed(value)
