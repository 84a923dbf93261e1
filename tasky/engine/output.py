"""What running tasks report besides their outcome: progress and log lines, buffered and written
in batches (every 200 ms, and before an attempt's final write), and their child processes.

This is the RunSink every run reports to. Workers may call it from their own threads.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable

from tasky import clock
from tasky.engine.background import Background
from tasky.engine.events import EventHub
from tasky.engine.runs import Runs
from tasky.settings import Settings
from tasky.store.base import Store
from tasky.store.records import ChildRecord

log = logging.getLogger("tasky.engine")

FLUSH_INTERVAL = 0.2


class Output:
    def __init__(
        self,
        store: Store,
        runs: Runs,
        events: EventHub,
        background: Background,
        settings: Settings,
    ) -> None:
        self._store = store
        self._runs = runs
        self._events = events
        self._background = background
        self._settings = settings  # read at each write: max_log_lines may change while running
        self._progress: dict[str, tuple[float | None, str | None]] = {}
        self._log_lines: list[tuple[str, float, str]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        runs.on_end.append(self.forget)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._background.spawn(self._flush_loop())

    # -- RunSink ----------------------------------------------------------------------------------
    def progress(self, task_id: str, fraction: float | None, message: str | None) -> None:
        self._call_in_loop(self._on_progress, task_id, fraction, message)

    def log(self, task_id: str, line: str) -> None:
        self._call_in_loop(self._on_log, task_id, clock.now(), line)

    def child_started(self, child: ChildRecord) -> None:
        child = dataclasses.replace(child, node=self._settings.node)
        self._background.spawn(self._store.record_child(child))

    def child_gone(self, task_id: str) -> None:
        self._background.spawn(self._store.forget_children([task_id]))

    # -- buffers ----------------------------------------------------------------------------------
    def live_progress(self, task_id: str) -> tuple[float | None, str | None] | None:
        """Progress not yet written to the store (newest), if any."""
        return self._progress.get(task_id)

    def forget(self, task_id: str) -> None:
        self._progress.pop(task_id, None)

    def holds_lines(self) -> bool:
        """Whether any log line waits to be written (else :meth:`flush_task` has nothing to
        queue, and a task's end may skip it: :meth:`forget` does the rest)."""
        return bool(self._log_lines)

    async def flush_task(self, task_id: str) -> None:
        """Queue this task's pending log lines ahead of its final write (which carries its
        newest progress itself: see :meth:`live_progress`)."""
        lines = [entry for entry in self._log_lines if entry[0] == task_id]
        if lines:
            self._log_lines = [entry for entry in self._log_lines if entry[0] != task_id]
            self._background.spawn(self._store.append_logs(lines, self._settings.max_log_lines))
            # One yield lets the spawned write reach the store's FIFO writer queue before the
            # final write does, so whoever sees the task finished also sees all its lines.
            await asyncio.sleep(0)
        self._progress.pop(task_id, None)

    async def flush(self) -> None:
        # Each batch is taken right before its write is queued, with no await in between, so a
        # task's final write (queued later) cannot overtake lines or progress taken here.
        lines, self._log_lines = self._log_lines, []
        if lines:
            await self._store.append_logs(lines, self._settings.max_log_lines)
        progress, self._progress = self._progress, {}
        if progress:
            await self._store.set_progress([(k, f, m) for k, (f, m) in progress.items()])

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            try:
                await self.flush()
            except Exception:
                log.exception("writing progress and logs failed")

    def _call_in_loop(self, func: Callable[..., None], *args: object) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            func(*args)
        else:
            loop.call_soon_threadsafe(func, *args)

    def _on_progress(self, task_id: str, fraction: float | None, message: str | None) -> None:
        handle = self._runs.get(task_id)
        if handle is None:
            return
        self._progress[task_id] = (fraction, message)
        self._events.publish(
            "task.progress",
            task=task_id,
            worker=handle.record.worker,
            chain=handle.record.chain_id,
            progress=fraction,
            message=message,
        )

    def _on_log(self, task_id: str, ts: float, line: str) -> None:
        self._log_lines.append((task_id, ts, line))
        handle = self._runs.get(task_id)
        self._events.publish(
            "task.log",
            task=task_id,
            worker=handle.record.worker if handle else None,
            chain=handle.record.chain_id if handle else None,
            line=line,
            ts=ts,
        )
