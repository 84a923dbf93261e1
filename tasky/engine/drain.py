"""Graceful shutdown (driven by tasky.shutdown): take no new work, let running tasks finish for a
grace period, and stop at once on a second signal."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping

from tasky import clock
from tasky.engine.dispatch import Dispatcher
from tasky.engine.errors import Draining
from tasky.engine.lanes import Lane
from tasky.engine.runner import RunHandle
from tasky.engine.runs import Runs

# How often a drain looks whether the running tasks are done.
_IDLE_POLL = 0.05
# Stopping: how often to look whether a second signal asks to stop at once; the time beyond the
# longest kill_grace that abandoned work gets (a thread task reaching its next checkpoint).
_STOP_POLL = 0.1
_STOP_MARGIN = 1.0


class Drain:
    def __init__(self, lanes: Mapping[str, Lane], runs: Runs, dispatcher: Dispatcher) -> None:
        self._lanes = lanes
        self._runs = runs
        self._dispatcher = dispatcher
        # When the drain's grace ends (monotonic; None: not draining), and whether a second
        # signal asked to stop at once.
        self._ends: float | None = None
        self.hurried = False

    def drain(self, grace: float) -> None:
        """Take no new work: submits and re-runs are refused (Draining) and nothing more is
        dispatched, while running tasks go on. ``grace``: how long they get (for Retry-After)."""
        if self._ends is None:
            self._ends = clock.monotonic() + grace
            self._dispatcher.halted = True

    @property
    def draining(self) -> bool:
        return self._ends is not None

    def refuse_new_work(self) -> None:
        if self._ends is not None:
            left = math.ceil(self._ends - clock.monotonic())
            raise Draining(
                "the server is shutting down and takes no new tasks; try again later",
                retry_after=max(1, left),
            )

    def busy(self) -> int:
        """Tasks holding a slot that are not paused: what a drain waits for (a paused one would
        hold the whole grace for nothing). A submit or a claim in flight counts too: its tasks
        may be about to start."""
        held = sum(
            lane.slots.running + lane.slots.reserved + (lane.claiming is not None)
            for lane in self._lanes.values()
        )
        return held - self._runs.paused()

    async def wait_idle(self, seconds: float) -> bool:
        """Wait up to ``seconds`` until no task is busy; whether none is."""
        deadline = clock.monotonic() + seconds
        while self.busy() > 0:
            left = deadline - clock.monotonic()
            if left <= 0:
                return False
            await asyncio.sleep(min(_IDLE_POLL, left))
        return True

    def hurry(self) -> None:
        """Stop at once (a second signal): task processes get SIGKILL without their grace."""
        self.hurried = True
        self.drain(0)
        if self._dispatcher.stopping:  # already abandoned with the workers' grace: cut it short
            for handle in self._runs.handles():
                handle.abandon(now=True)

    async def wait_stopped(self, handles: list[RunHandle]) -> None:
        """Give abandoned work the time a cancel gives it (a process group its kill_grace between
        SIGTERM and SIGKILL) while the loop still runs: once it ends, what is left is killed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max((h.stop_grace for h in handles), default=0.0) + _STOP_MARGIN
        pending = {asyncio.ensure_future(h.settled.wait()) for h in handles}
        while pending and not self.hurried:
            left = deadline - loop.time()
            if left <= 0:
                break
            _, pending = await asyncio.wait(pending, timeout=min(left, _STOP_POLL))
        for waiter in pending:
            waiter.cancel()
