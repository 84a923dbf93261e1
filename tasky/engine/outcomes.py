"""An attempt's outcome made durable: the task finished, or queued again for a retry with
backoff. Either way the attempt ends here (tasky.engine.runs frees its slot)."""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from typing import Any

from tasky import clock
from tasky.engine.announce import Announcer, log_failed
from tasky.engine.background import Background
from tasky.engine.handle import RunOutcome
from tasky.engine.lanes import Lane
from tasky.engine.output import Output
from tasky.engine.runs import Runs
from tasky.logs import task_fields
from tasky.states import Status
from tasky.store.base import Store
from tasky.store.records import AttemptEnd, Outcome, TaskRecord

log = logging.getLogger("tasky.engine")


def wrap_output(value: Any) -> dict[str, Any]:
    """``Output`` is always an object: strings as the seed's ``string_output``, others as value."""
    if isinstance(value, dict):
        return value
    if value is None:
        return {}
    if isinstance(value, str):
        return {"string_output": value}
    return {"value": value}


class Outcomes:
    def __init__(
        self,
        store: Store,
        owner: str,
        runs: Runs,
        output: Output,
        announcer: Announcer,
        background: Background,
    ) -> None:
        self._store = store
        self._owner = owner
        self._runs = runs
        self._output = output
        self._announcer = announcer
        self._background = background
        # Runs that ended in this turn of the event loop, for _end_group.
        self._ending: list[tuple[Lane, TaskRecord, RunOutcome]] = []

    @property
    def gathering(self) -> bool:
        """Whether ended runs wait for the end of this turn of the loop (see :meth:`ended`)."""
        return bool(self._ending)

    def ended(self, lane: Lane, record: TaskRecord, outcome: RunOutcome) -> None:
        """A run reported its outcome. The plain case (a task outside chains that ends for good,
        not stopped by a shutdown, no log lines to write first) joins the other runs that
        ended in this turn of the event loop: their ends go to the store as one write
        (:meth:`_finish_group`), one coroutine for all of them: a coroutine, a store write and
        a future per run were about a fifth of the event loop's CPU per task in the batch
        driver (50,000 no-ops: 24-26 -> 19-21 us). The rest goes through :meth:`complete`, one
        at a time."""
        handle = self._runs.get(record.id)
        if (
            handle is None
            or record.chain_id is not None
            or (outcome.status is Status.FAILED and record.attempt <= record.retries)
        ):
            self._background.spawn(self.complete(lane, record, outcome))
            return
        if handle.deadline is not None:
            handle.deadline.stop()
        self._ending.append((lane, record, outcome))
        if len(self._ending) == 1:
            asyncio.get_running_loop().call_soon(self._end_group)

    def _end_group(self) -> None:
        group, self._ending = self._ending, []
        if self._output.holds_lines():  # log lines go first, each task's before its end
            for lane, record, outcome in group:
                self._background.spawn(self.complete(lane, record, outcome))
            return
        self._background.spawn(self._finish_group(group))

    async def _finish_group(self, group: list[tuple[Lane, TaskRecord, RunOutcome]]) -> None:
        """:meth:`_finish` for each of ``group`` with one write."""
        ends: list[AttemptEnd] = []
        ending: list[tuple[Lane, TaskRecord, Status, str | None]] = []
        lazy = True
        for lane, record, run in group:
            handle = self._runs.get(record.id)
            if handle is not None and handle.abandoned:
                # The server is stopping: nothing is recorded, the next start's recovery decides.
                self._runs.end(lane, record.id)
                continue
            status, error = run.status, run.error
            traceback = handle.traceback if handle is not None else None
            outcome = self._final_outcome(record.id, status, run.result, error, traceback)
            self._output.forget(record.id)
            ends.append(AttemptEnd(record.id, self._owner, record.attempt, outcome))
            ending.append((lane, record, status, error))
            lazy = lazy and not lane.hint  # as in _finish: nothing waits on the slot
        if not ends:
            return
        # A claim for the slots these ends free, spawned now so that it reaches the store just
        # after them (the write below is handed over in this step): on a store that commits in
        # order it rides in their commit, instead of a commit of its own once they are
        # delivered (one commit per wave of tasks instead of two in the batch driver).
        for lane, count in Counter(lane for lane, _, _, _ in ending).items():
            lane.dispatch(ending=count)
        answers: list[bool | None] = [None] * len(ends)  # None: unknown (the write failed)
        try:
            answers = list(await self._store.finish_many(ends, lazy))
        except Exception:
            for _, record, _, _ in ending:
                log.exception("recording the end of task %s failed", record.id)
        finally:
            for lane, record, _, _ in ending:
                self._runs.end(lane, record.id)
        told: list[tuple[TaskRecord, str]] = []
        for (_, record, status, error), moved in zip(ending, answers, strict=True):
            if moved and status is Status.FAILED:
                log_failed(record, error)
            if moved is False:
                self._announce_end(record, status, moved)  # the warning, nothing announced
            else:
                told.append((record, status.value))
        self._announcer.statuses(told)

    async def complete(self, lane: Lane, record: TaskRecord, outcome: RunOutcome) -> None:
        """Turn a run's outcome into the task's next status, durably, then free the slot."""
        status, result, error = outcome.status, outcome.result, outcome.error
        handle = self._runs.get(record.id)
        if handle is not None and handle.deadline is not None:
            handle.deadline.stop()
        if handle is not None and handle.abandoned:
            # The server is stopping: nothing is recorded, the next start's recovery decides.
            self._runs.end(lane, record.id)
            return
        traceback = handle.traceback if handle is not None else None
        if status is Status.FAILED and record.attempt <= record.retries:
            await self._retry(lane, record, error or "failed", traceback)
        else:
            await self._finish(lane, record, status, result, error, traceback)

    async def _finish(
        self,
        lane: Lane,
        record: TaskRecord,
        status: Status,
        result: Any,
        error: str | None,
        traceback: str | None,
    ) -> None:
        outcome = self._final_outcome(record.id, status, result, error, traceback)
        moved: bool | None = None  # None: unknown (the write failed, and may have committed)
        try:
            if self._output.holds_lines():
                await self._output.flush_task(record.id)
            else:
                self._output.forget(record.id)  # no coroutine for nothing to flush
            # Lazy when nothing waits on the end at once: no chain step follows it and no task
            # of the worker is known to wait for the slot it frees (see Store.finish).
            lazy = record.chain_id is None and not lane.hint
            finish = self._store.finish(record.id, self._owner, record.attempt, outcome, lazy)
            if record.chain_id is not None and self._announcer.hears_finishing:
                # The finish is queued first (its task runs before anything the listeners
                # start), so the chain's next step, queued by a listener's task before the
                # hand-over to the writer, rides in the same group commit: a sequential chain
                # on SQLite commits once per step instead of twice (measured: 2.00 -> 1.00
                # commits and 0.72 -> 0.51 ms of server CPU per no-op step).
                queued = asyncio.ensure_future(finish)
                self._announcer.finishing(record, outcome)
                moved = await queued
            else:
                moved = await finish
            if moved and status is Status.FAILED:
                log_failed(record, error)
        except Exception:
            log.exception("recording the end of task %s failed", record.id)
        finally:
            self._runs.end(lane, record.id)
        self._announce_end(record, status, moved)

    def _final_outcome(
        self, task_id: str, status: Status, result: Any, error: str | None, traceback: str | None
    ) -> Outcome:
        """The end to record. The newest progress may still be in memory: its message goes with
        the final write."""
        fraction, message = self._output.live_progress(task_id) or (None, None)
        return Outcome(
            status,
            clock.now(),
            result=wrap_output(result) if status is Status.COMPLETED else None,
            error=error,
            progress=fraction,
            progress_message=message,
            traceback=traceback,
        )

    def _announce_end(self, record: TaskRecord, status: Status, moved: bool | None) -> None:
        if moved is False:
            # The lease moved on (this node froze or lost the database past its lease, and
            # another node took the task): this late end is not the task's.
            log.warning(
                "task %s (worker %s) attempt %d ended %s here, but this node no longer holds "
                "it (its lease ran out and another node took it): the end is not recorded",
                record.id,
                record.worker,
                record.attempt,
                status.value,
                extra=task_fields(record.id, record.worker),
            )
            return
        self._announcer.status(record.id, record.worker, status.value, record.chain_id)

    async def _retry(
        self, lane: Lane, record: TaskRecord, error: str, traceback: str | None
    ) -> None:
        worker = lane.worker
        backoff = min(worker.retry_backoff * 2 ** (record.attempt - 1), worker.retry_backoff_max)
        delay = backoff * random.uniform(0.5, 1.0)  # jitter: retries of many tasks spread out
        now = clock.now()
        moved = False
        try:
            if self._output.holds_lines():
                await self._output.flush_task(record.id)
            else:
                self._output.forget(record.id)
            moved = await self._store.retry_later(
                record.id, self._owner, record.attempt, error, now + delay, now, traceback
            )
        except Exception:
            log.exception("recording the retry of task %s failed", record.id)
        finally:
            self._runs.end(lane, record.id)
        if not moved:
            return
        lane.counters.ended("Retried")
        # Not a failed task (yet): INFO, so the WARNING lines count the tasks that failed.
        log.info(
            "task %s (worker %s) attempt %d failed, retrying in %.1f s: %s",
            record.id,
            record.worker,
            record.attempt,
            delay,
            error,
            extra=task_fields(record.id, record.worker),
        )
        self._announcer.status(record.id, record.worker, "Queued", record.chain_id, retry_in=delay)
        self._background.later(delay, lane.wake)
