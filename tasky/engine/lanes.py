"""Per worker, what the engine keeps in memory: the slots it holds, and whether the store may
hold runnable tasks for it. The queue itself lives in the store (see tasky.engine.dispatch)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from tasky.engine.admission import QueueCount
from tasky.engine.counters import WorkerCounters
from tasky.workers.base import Worker


class Slots:
    """The running slots of one worker that this engine holds, counted in one place.

    A slot becomes running when a task starts here (a claim got it from the store, or a submit
    reserved it before asking the store to start its task at once, so that two submits in
    flight cannot count on the same free slot) and is released once the attempt's end is
    recorded; a reservation the store did not use is given back. The store enforces the
    worker's limit over every owner; these counts tell this engine how many to ask for. Every
    time a slot comes free, ``on_free`` runs (the lane's dispatch).
    """

    __slots__ = ("limit", "on_free", "reserved", "running")

    def __init__(self, limit: int, on_free: Callable[[], None]) -> None:
        self.limit = limit
        self.on_free = on_free
        self.reserved = 0
        # Tasks started here that have not ended (a paused one keeps its slot).
        self.running = 0

    @property
    def free(self) -> int:
        return self.limit - self.running - self.reserved

    def reserve(self, wanted: int) -> int:
        """Reserve up to ``wanted`` free slots; returns how many were."""
        got = max(min(wanted, self.free), 0)
        self.reserved += got
        return got

    def start(self, reserved: bool) -> None:
        """A task starts here, on a slot its submit reserved or one its claim got."""
        if reserved:
            self.reserved -= 1
        self.running += 1

    def unreserve(self, count: int = 1) -> None:
        if count > 0:
            self.reserved -= count
            self.on_free()

    def release(self) -> None:
        """A task that started here ended (its end is recorded)."""
        self.running -= 1
        self.on_free()


class Lane:
    """One worker's state in this engine."""

    def __init__(self, worker: Worker, dispatch: Callable[[Lane, int], None]) -> None:
        self.worker = worker
        self.slots = Slots(worker.max_tasks, self._freed)
        self._dispatch = dispatch
        # A dispatch is due once the loop has run the callbacks that are ready (see _freed).
        self._dispatch_due = False
        # The store may hold runnable tasks of this worker: set by whatever queues one (a submit
        # stored Queued, resume, re-run, recovery, a retry's timer, the poll), cleared when a
        # claim comes back with fewer tasks than it asked for.
        self.hint = False
        # The claim in flight, if any (one at a time per lane).
        self.claiming: asyncio.Task[Any] | None = None
        # The timer that wakes the lane when a task waiting for its run_after becomes runnable.
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = 0.0
        # The queue cap's bookkeeping (see tasky.engine.admission); ``admitting``: inserts of
        # Queued tasks in flight.
        self.count = QueueCount()
        self.admitting = 0
        self.counters = WorkerCounters()

    @property
    def name(self) -> str:
        return self.worker.name

    def wake(self) -> None:
        """The store may hold runnable tasks of this worker: dispatch."""
        self.hint = True
        self._dispatch(self, 0)

    def dispatch(self, ending: int = 0) -> None:
        """Claim for the free slots (and ``ending``: see Dispatcher.dispatch)."""
        self._dispatch(self, ending)

    @property
    def dispatch_due(self) -> bool:
        """Whether a dispatch waits for the callbacks ready now (see :meth:`_freed`)."""
        return self._dispatch_due

    def _freed(self) -> None:
        """A slot came free: dispatch once the callbacks ready now have run. The ends of a
        group commit are delivered together and free their slots one after another; claiming at
        the first (as many as were free then: one) sent a claim of one task to the store, its own
        commit, before the claim of all the others (the batch driver's drain went through three
        commits per wave of tasks instead of one)."""
        if self._dispatch_due:
            return
        self._dispatch_due = True
        asyncio.get_running_loop().call_soon(self._dispatch_freed)

    def _dispatch_freed(self) -> None:
        self._dispatch_due = False
        self._dispatch(self, 0)
