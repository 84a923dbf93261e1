"""Dispatch: the store is the queue of record, and a claim decides what runs here.

A lane with free slots whose hint says the store may hold runnable tasks claims them (one claim
in flight per lane; the claim asks for as many tasks as the lane has free slots). A claim that
comes back short clears the hint: the queue is empty, or its next task waits for its
``run_after`` (a timer wakes the lane then), or the worker's limit is spent by slots other
engines hold (the hint is set again: a slot freed here, or the poll, claims again). Whatever
queues a task sets the hint; a periodic poll sets it too when the store holds runnable tasks
nobody told this engine about (queued by another engine, or written while this one was busy),
and retries lanes whose runnable tasks wait on slots held elsewhere.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from tasky import clock
from tasky.engine.background import Background
from tasky.engine.lanes import Lane
from tasky.engine.launch import Launcher
from tasky.engine.nodes import claim_targets
from tasky.settings import Settings
from tasky.store.base import Store
from tasky.store.records import Claim

log = logging.getLogger("tasky.engine")


class Dispatcher:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        background: Background,
    ) -> None:
        self._store = store
        self._owner = settings.node_id
        self._node = settings.node
        self._targets = claim_targets(settings)
        self._settings = settings  # lease_seconds, poll_interval
        self._background = background
        self._lanes: Mapping[str, Lane] = {}
        self._launcher: Launcher | None = None
        # Draining or stopping: nothing new is claimed. Stopping: nothing claimed is started.
        self.halted = False
        self.stopping = False

    def attach(self, lanes: Mapping[str, Lane], launcher: Launcher) -> None:
        self._lanes = lanes
        self._launcher = launcher

    def start(self) -> None:
        for lane in self._lanes.values():
            lane.wake()
        self._background.spawn(self._poll_loop())

    def new_claim(self, now: float, limit: int, count: int | None = None) -> Claim:
        """A claim by this engine, its lease running from ``now``."""
        return Claim(
            self._owner,
            now + self._settings.lease_seconds,
            limit,
            count,
            node=self._node,
            targets=self._targets,
        )

    def may_start_at_once(self, lane: Lane) -> bool:
        """A submit may claim its own task: a free slot, and no queued task known to wait. (A
        claim in flight does not stop it: the store starts the task only if nothing runnable
        waits ahead of it, whatever the claim takes.)"""
        return not self.halted and not lane.hint and lane.slots.free > 0

    def dispatch(self, lane: Lane, ending: int = 0) -> None:
        """Claim for the lane's free slots if the store may hold runnable tasks. ``ending``:
        slots whose ends were just handed to the store; on a store that commits writes in order
        the claim counts them too, and goes in the same commit as those ends (the store counts
        held slots itself, so the claim never takes more than they free)."""
        if self.halted or lane.claiming is not None or not lane.hint:
            return
        count = lane.slots.free
        if self._store.ordered_writes:
            count += ending
        if count <= 0:
            return
        # Cleared now, so a wake-up that arrives while the claim is out is not lost.
        lane.hint = False
        lane.claiming = self._background.spawn(self._claim(lane, count))

    async def settle(self, lane: Lane) -> None:
        """Wait until the lane's claim in flight (if any) has launched what it got."""
        claiming = lane.claiming
        if claiming is not None:
            await asyncio.wait({claiming})

    async def settle_all(self) -> None:
        for lane in self._lanes.values():
            await self.settle(lane)

    async def _claim(self, lane: Lane, count: int) -> None:
        now = clock.now()
        try:
            claimed = await self._store.claim(
                lane.name, self.new_claim(now, lane.worker.max_tasks, count), now
            )
        except Exception:
            log.exception("claiming tasks of worker %s failed", lane.name)
            lane.claiming = None
            self._wake_at(lane, now + self._settings.poll_interval)
            return
        lane.claiming = None
        assert self._launcher is not None
        if self.stopping:
            return  # what was claimed stays Running here, for the next start's recovery
        self._launcher.launch_claimed(lane, claimed)
        if len(claimed) == count:
            lane.hint = True  # there may be more
        else:
            self._background.spawn(self._watch(lane, now))
        lane.dispatch()

    async def _watch(self, lane: Lane, claimed_at: float) -> None:
        """After a short claim: wake the lane when its next queued task becomes runnable, if
        that is after the claim looked. A task that was runnable then was left by the limit,
        with slots held elsewhere: the hint stays set, without a claim now (that would spin),
        so a slot freed here, or the poll, claims again."""
        try:
            ready = await self._store.next_runnable_at(lane.name, self._targets)
        except Exception:
            log.exception("reading the queue of worker %s failed", lane.name)
            return
        if ready is None:
            return
        if ready > claimed_at:
            self._wake_at(lane, ready)
        else:
            lane.hint = True

    def _wake_at(self, lane: Lane, at: float) -> None:
        delay = at - clock.now()
        if delay <= 0:
            lane.wake()
            return
        if lane.timer is not None:
            if lane.timer_at <= at:
                return  # an earlier wake-up is set already
            self._background.cancel(lane.timer)

        def fire() -> None:
            lane.timer = None
            lane.wake()

        lane.timer, lane.timer_at = self._background.later(delay, fire), at

    async def _poll_loop(self) -> None:
        """Notice runnable tasks this engine was not told about (a read, no claim, when there
        are none)."""
        while True:
            await asyncio.sleep(self._settings.poll_interval)
            for lane in list(self._lanes.values()):
                if self.halted or lane.claiming is not None or lane.slots.free <= 0:
                    continue
                if lane.hint:
                    # Runnable tasks wait on slots other engines held: one claim per poll.
                    lane.dispatch()
                    continue
                try:
                    # Only what this node may take: a task waiting for another node must not
                    # make it claim (and find nothing) every poll.
                    ready = await self._store.next_runnable_at(lane.name, self._targets)
                except Exception:
                    log.exception("reading the queue of worker %s failed", lane.name)
                    continue
                if ready is not None:
                    self._wake_at(lane, ready)
