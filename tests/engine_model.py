"""A simple model of what the engine may do to tasks, for the state-machine test
(tests/test_engine_stateful.py).

The model follows each task through the engine's committed status changes (its events, and the
moves a restart makes without events) and checks every change as it comes: only moves
``tasky.states.ALLOWED`` has, never more tasks holding a slot than the worker's ``max_tasks``, and
FIFO per worker (a task starts only when no task of its worker that joined the queue before it
still waits). It also keeps what the store must show: each task's status, attempt, and the
attempts that ended (each recorded exactly once).

Every Queued task is runnable in this test (retries have no backoff), so "waits" means Queued.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from tasky.engine.errors import Unsupported
from tasky.states import ACTION_SOURCES, ALLOWED, FINISHED, IllegalMove, Status
from tasky.workers.base import Worker


class ModelViolation(AssertionError):
    """The engine did something the model forbids."""


@dataclass
class Tracked:
    worker: str
    statuses: list[Status]
    attempt: int = 1
    # Claimed and not ended (Running, or Paused after it started).
    holds: bool = False
    # Order in which the task last joined its worker's queue.
    joined: int = 0
    # (attempt, status) of every attempt that ended, as the store must record them; how many of
    # them ran (a task canceled while it waited ends an attempt that never ran).
    ended: list[tuple[int, Status]] = field(default_factory=list)
    ran: int = 0

    @property
    def status(self) -> Status:
        return self.statuses[-1]

    @property
    def waiting(self) -> bool:
        """Holds no slot and has not finished: Queued, or Paused before it started."""
        return self.status is Status.QUEUED or (self.status is Status.PAUSED and not self.holds)


class Model:
    def __init__(self, workers: dict[str, type[Worker]]) -> None:
        self.workers = workers
        self.tasks: dict[str, Tracked] = {}
        self._joins = itertools.count(1)

    # -- what the engine reports ------------------------------------------------------------------
    def created(self, task_id: str, worker: str, status: Status) -> None:
        if task_id in self.tasks:
            raise ModelViolation(f"task {task_id} created twice")
        if status not in (Status.QUEUED, Status.RUNNING):
            raise ModelViolation(f"task {task_id} created {status}")
        self.tasks[task_id] = Tracked(worker, [Status.QUEUED])
        self._join(self.tasks[task_id])
        if status is Status.RUNNING:  # its submit claimed it
            self.move(task_id, Status.RUNNING)

    def move(self, task_id: str, new: Status) -> None:
        """One committed status change of a task, checked before it is applied."""
        task = self.tasks.get(task_id)
        if task is None:
            raise ModelViolation(f"task {task_id} moved to {new} before it was created")
        old = task.status
        if new not in ALLOWED[old]:
            raise ModelViolation(f"task {task_id}: {old} -> {new} is not an allowed move")
        if new is Status.RUNNING and not task.holds:
            if old is not Status.QUEUED:
                raise ModelViolation(f"task {task_id} started from {old} (held back?)")
            self._check_fifo(task_id, task)
            task.holds = True
            self._check_slots(task.worker)
        elif new in FINISHED:
            task.ended.append((task.attempt, new))
            task.ran += task.holds
            task.holds = False
        elif new is Status.QUEUED:
            if task.holds:  # a retry, or re-queued after the server stopped
                task.ended.append((task.attempt, Status.FAILED))
                task.ran += 1
                task.attempt += 1
            elif old in FINISHED:  # run again
                task.attempt += 1
            task.holds = False
            self._join(task)
        task.statuses.append(new)

    # -- the checks made as the moves come --------------------------------------------------------
    def _check_fifo(self, task_id: str, task: Tracked) -> None:
        ahead = [
            other_id
            for other_id, other in self.tasks.items()
            if other.worker == task.worker
            and other.status is Status.QUEUED
            and other.joined < task.joined
        ]
        if ahead:
            raise ModelViolation(f"task {task_id} started while {ahead} waited ahead of it")

    def _check_slots(self, worker: str) -> None:
        held = self.holding(worker)
        if len(held) > self.workers[worker].max_tasks:
            raise ModelViolation(f"{len(held)} tasks of {worker} hold a slot: {held}")

    def _join(self, task: Tracked) -> None:
        task.joined = next(self._joins)

    # -- questions the machine asks ---------------------------------------------------------------
    def by_status(self, worker: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for task in self.tasks.values():
            if task.worker == worker:
                counts[task.status.value] = counts.get(task.status.value, 0) + 1
        return counts

    def ran(self, worker: str) -> int:
        """Attempts of the worker's tasks that ran and ended."""
        return sum(t.ran for t in self.tasks.values() if t.worker == worker)

    def holding(self, worker: str) -> list[str]:
        return [i for i, t in self.tasks.items() if t.worker == worker and t.holds]

    def refusal(self, task_id: str, action: str) -> type[Exception] | None:
        """What the engine must raise for ``action`` on the task as it is, per the state table
        and the worker's actions (None: it must do it)."""
        task = self.tasks[task_id]
        if action == "update":
            return None if task.waiting else IllegalMove
        if task.status not in ACTION_SOURCES[action]:
            return IllegalMove
        if action == "run" or (action in ("pause", "resume") and task.waiting):
            return None  # holding a waiting task back is every worker's
        return None if self.workers[task.worker].supports(action) else Unsupported
