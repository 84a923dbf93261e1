"""The scheduler loop: wake at the earliest due time, claim it, start its run.

The loop polls the store at least every ``POLL`` seconds, so a schedule created through another
server sharing the database (or a changed clock) is seen soon; a change on this server wakes it at
once. Each due time is claimed in the store, so any number of servers can run this loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from tasky import clock
from tasky.schedules.service import ScheduleService

log = logging.getLogger("tasky.schedules")

POLL = 1.0
MIN_SLEEP = 0.01


class Scheduler:
    def __init__(self, service: ScheduleService) -> None:
        self.service = service
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="tasky-scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        try:
            await self.service.recover(clock.now())
        except Exception:  # recovery is a courtesy: scheduling goes on without it
            log.exception("could not check for runs interrupted by a crash")
        while True:
            # Cleared before the round: a change made during it wakes the next wait at once.
            self.service.changed.clear()
            try:
                delay = await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # a store hiccup must not end scheduling for good
                log.exception("the scheduler failed a round; retrying")
                delay = POLL
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.service.changed.wait(), delay)

    async def tick(self) -> float:
        """Fire every due schedule; the seconds until the next one (at most ``POLL``)."""
        now = clock.now()
        earliest = now + POLL
        for record in await self.service.store.list_schedules():
            if record.paused:
                continue
            if record.next_run <= now:
                await self.service.fire_due(record, now)
                continue
            earliest = min(earliest, record.next_run)
        return max(MIN_SLEEP, earliest - clock.now())
