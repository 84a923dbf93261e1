"""Telling the rest of the server about committed status changes: the event hub (live streams),
the listeners (chains, callbacks) and the per-worker outcome counters."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tasky.engine.events import EventHub
from tasky.engine.lanes import Lane
from tasky.logs import task_fields
from tasky.states import STATUS_OF, Status
from tasky.store.records import Outcome, TaskRecord

log = logging.getLogger("tasky.engine")

StatusListener = Callable[[str, str, Status, str | None], None]
FinishingListener = Callable[[TaskRecord, Outcome], None]


class Announcer:
    def __init__(self, events: EventHub, lanes: Mapping[str, Lane]) -> None:
        self.events = events
        self._lanes = lanes
        self._listeners: list[StatusListener] = []
        self._finishing: list[FinishingListener] = []

    def add_listener(self, listener: StatusListener) -> None:
        self._listeners.append(listener)

    def add_finishing_listener(self, listener: FinishingListener) -> None:
        self._finishing.append(listener)

    @property
    def hears_finishing(self) -> bool:
        return bool(self._finishing)

    def finishing(self, record: TaskRecord, outcome: Outcome) -> None:
        """A chain's task is about to end with ``outcome`` (not committed yet)."""
        for listener in self._finishing:
            try:
                listener(record, outcome)
            except Exception:
                log.exception("a finishing listener failed")

    def created(self, records: Sequence[TaskRecord]) -> None:
        """A ``task.created`` event for each of the new tasks, in order."""
        self.events.publish_many(
            [
                {
                    "type": "task.created",
                    "task": record.id,
                    "worker": record.worker,
                    "status": record.status.value,
                    "chain": record.chain_id,
                }
                for record in records
            ]
        )

    def status(
        self, task_id: str, worker: str, status: str, chain_id: str | None, **extra: Any
    ) -> None:
        self._count(worker, status)
        self.events.publish(
            "task.status", task=task_id, worker=worker, status=status, chain=chain_id, **extra
        )
        self._tell(task_id, worker, status, chain_id)

    def statuses(self, changes: Sequence[tuple[TaskRecord, str]]) -> None:
        """:meth:`status` for each (task, new status) of ``changes``, their events published
        together (a claim's tasks starting, the ends of one write)."""
        for record, status in changes:
            self._count(record.worker, status)
        self.events.publish_many(
            [
                {
                    "type": "task.status",
                    "task": record.id,
                    "worker": record.worker,
                    "status": status,
                    "chain": record.chain_id,
                }
                for record, status in changes
            ]
        )
        if self._listeners:
            for record, status in changes:
                self._tell(record.id, record.worker, status, record.chain_id)

    def _count(self, worker: str, status: str) -> None:
        lane = self._lanes.get(worker)
        if lane is not None:
            lane.counters.ended(status)  # only finished statuses count (see WorkerCounters)

    def _tell(self, task_id: str, worker: str, status: str, chain_id: str | None) -> None:
        if not self._listeners:
            return
        as_status = STATUS_OF[status]
        for listener in self._listeners:
            try:
                listener(task_id, worker, as_status, chain_id)
            except Exception:
                log.exception("a status listener failed")


def log_failed(record: TaskRecord, error: str | None) -> None:
    """The server log's one line per failed task (the log formatter keeps it on one line)."""
    log.warning(
        "task %s (worker %s) failed: %s",
        record.id,
        record.worker,
        error,
        extra=task_fields(record.id, record.worker),
    )
