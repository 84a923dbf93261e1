"""Hearing from the other nodes that share the store: wake-ups, action requests, their changes.

Everything arrives two ways: a hint from the store (``Store.watch``: PostgreSQL's LISTEN/NOTIFY),
which may be lost, and polling every ``poll_interval``, which cannot be. A hint that changes were
logged makes this node read them: a change that may have made a task runnable (queued by another
node, or a slot freed there while tasks wait) wakes the worker's lane (tasky.engine.dispatch
claims), and each change is published on this node's event hub, so an event stream on any node
shows the tasks every node runs. A hint that another node asked this one to cancel, pause or
resume a task it runs makes it take the requests now. On a store one node uses alone, nothing
ever arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping

from tasky import clock
from tasky.engine.background import Background
from tasky.engine.events import EventHub
from tasky.engine.lanes import Lane
from tasky.engine.runs import Runs
from tasky.store.base import Store
from tasky.store.records import ActionRequest, TaskChange, Wakeup

log = logging.getLogger("tasky.engine")

# Changes read per query.
_BATCH = 500
# A hole in the change log's positions is asked for again this long (a transaction that logged
# a change commits after a later one; a rolled-back one leaves a hole for good).
_HOLE_SECONDS = 10.0
# Logged changes (and untaken requests) older than this are pruned, now and then.
_KEEP_SECONDS = 600.0
_PRUNE_EVERY = 60.0


class Peers:
    def __init__(
        self,
        store: Store,
        owner: str,
        lanes: Mapping[str, Lane],
        runs: Runs,
        events: EventHub,
        background: Background,
        poll_interval: float,
        actions: Mapping[str, Callable[[str], Awaitable[object]]],
    ) -> None:
        self._store = store
        self._owner = owner
        self._lanes = lanes
        self._runs = runs
        self._events = events
        self._background = background
        self._poll_interval = poll_interval
        self._actions = actions
        self._requests_due = asyncio.Event()
        self._changes_due = asyncio.Event()
        self._cursor = 0
        # Holes in the positions read so far: position -> when first seen.
        self._holes: dict[int, float] = {}
        self._pruned_at = 0.0

    async def start(self) -> None:
        self._cursor = await self._store.last_change()
        self._store.watch(self.wake)
        self._background.spawn(self._requests_loop())
        self._background.spawn(self._changes_loop())

    def wake(self, hint: Wakeup) -> None:
        if hint.kind == "control":
            if hint.subject == self._owner:
                self._requests_due.set()
        elif hint.kind == "changes":
            self._changes_due.set()
        elif hint.kind == "all":
            for lane in self._lanes.values():
                lane.wake()
            self._requests_due.set()
            self._changes_due.set()

    # -- actions other nodes ask of this one ----------------------------------------------------
    async def _requests_loop(self) -> None:
        while True:
            await _wait(self._requests_due, self._poll_interval)
            try:
                requests = await self._store.take_requests(self._owner)
            except Exception:
                log.exception("reading the actions asked of this node failed")
                continue
            for request in requests:
                self._background.spawn(self._apply(request))

    async def _apply(self, request: ActionRequest) -> None:
        handle = self._runs.get(request.task_id)
        if handle is None or handle.record.attempt != request.attempt:
            return  # the attempt ended here meanwhile: nothing left to act on
        act = self._actions.get(request.action)
        if act is None:
            return
        try:
            await act(request.task_id)
        except Exception as exc:  # an illegal move by now, or a worker that refuses it
            log.info(
                "%s of task %s, asked by another node, not done: %s",
                request.action,
                request.task_id,
                exc,
            )

    # -- changes other nodes made ---------------------------------------------------------------
    async def _changes_loop(self) -> None:
        while True:
            await _wait(self._changes_due, self._poll_interval)
            try:
                await self._read_changes()
                await self._prune()
            except Exception:
                log.exception("reading the changes of other nodes failed")

    async def _read_changes(self) -> None:
        while True:
            now = clock.monotonic()
            self._holes = {p: t for p, t in self._holes.items() if now - t < _HOLE_SECONDS}
            changes = await self._store.changes_since(self._cursor, _BATCH, sorted(self._holes))
            woken: set[str] = set()
            for change in changes:
                if self._note(change, now) and change.wakes:
                    woken.add(change.worker)
            for worker in woken:  # once per worker, however many of its tasks changed
                lane = self._lanes.get(worker)
                if lane is not None:
                    lane.wake()
            if len(changes) < _BATCH:
                return

    def _note(self, change: TaskChange, now: float) -> bool:
        """Publish a change another node made; returns whether it is one (new to this node)."""
        if change.seq in self._holes:
            del self._holes[change.seq]
        elif change.seq > self._cursor:
            # (A hole wider than a read could fill is a pruned stretch, not commits in flight.)
            for hole in range(max(self._cursor + 1, change.seq - _BATCH), change.seq):
                self._holes[hole] = now
            self._cursor = change.seq
        else:
            return False  # seen already
        if change.here:
            return False  # this node announced it (and knows what it queued or freed)
        if change.created:
            self._events.publish(
                "task.created",
                task=change.task_id,
                worker=change.worker,
                status=change.status.value,
                chain=change.chain_id,
            )
        else:
            self._events.publish(
                "task.status",
                task=change.task_id,
                worker=change.worker,
                status=change.status.value,
                chain=change.chain_id,
                node=change.node,
            )
        return True

    async def _prune(self) -> None:
        now = clock.now()
        if now - self._pruned_at >= _PRUNE_EVERY:
            self._pruned_at = now
            await self._store.prune_changes(now - _KEEP_SECONDS)


async def _wait(due: asyncio.Event, timeout: float) -> None:
    """Until ``due`` is set or ``timeout`` passes; ``due`` is cleared."""
    # asyncio.timeout, not wait_for: no task of its own for every wait.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await due.wait()
    due.clear()
