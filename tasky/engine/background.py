"""The engine's background work: tasks it spawned and timers it set, all ended at stop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any


class Background:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._timers: set[asyncio.TimerHandle] = set()
        self.stopped = False

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coro`` on its own; kept referenced until done (the loop keeps only weak ones)."""
        # Straight to the loop: ensure_future's checks cost ~1 us per call, and every attempt's
        # end is spawned here.
        task: asyncio.Task[Any] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def later(self, delay: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
        """Call ``callback`` in ``delay`` seconds, unless the engine stops first."""
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._timers.discard(timer)
            if not self.stopped:
                callback()

        timer = loop.call_later(max(delay, 0.0), fire)
        self._timers.add(timer)
        return timer

    def cancel(self, timer: asyncio.TimerHandle) -> None:
        timer.cancel()
        self._timers.discard(timer)

    def stop_timers(self) -> None:
        self.stopped = True
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    async def stop_tasks(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
