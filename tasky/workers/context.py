"""What a running task's ``perform`` sees besides its config: progress, logs and control points.

Thread-mode work gets :class:`TaskContext` (blocking ``checkpoint``); async work gets
:class:`AsyncTaskContext` (awaitable ``checkpoint`` and ``sleep``). Both report progress and log
lines to the engine through a sink that is safe to call from any thread.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Protocol

from tasky.net.addresses import DEFAULT_POLICY, OutboundPolicy


class TaskCancelled(Exception):
    """The task was cancelled (or timed out); raised at a checkpoint so the work unwinds."""


class ContextSink(Protocol):
    def progress(self, task_id: str, fraction: float | None, message: str | None) -> None: ...

    def log(self, task_id: str, line: str) -> None: ...


class _ContextBase:
    # Directories that file-touching workers may use (the server's --root settings).
    roots: tuple[Path, ...] = ()
    # What outbound requests (tasky.net.async_client) may reach: the server's --outbound-allow.
    outbound: OutboundPolicy = DEFAULT_POLICY

    def __init__(self, task_id: str, attempt: int, worker: str, sink: ContextSink) -> None:
        self.id = task_id
        self.attempt = attempt
        self.worker = worker
        self._sink = sink
        self._cancel_reason: str | None = None

    @property
    def cancelled(self) -> bool:
        return self._cancel_reason is not None

    @property
    def cancel_reason(self) -> str | None:
        return self._cancel_reason

    def progress(self, fraction: float | None, message: str | None = None) -> None:
        """Report how far the task is, as a fraction in [0, 1], with an optional message."""
        if fraction is not None:
            fraction = min(max(float(fraction), 0.0), 1.0)
        self._sink.progress(self.id, fraction, message)

    def log(self, line: str) -> None:
        """Add a line to the task's log (kept with the task, readable while it runs)."""
        for part in str(line).splitlines() or [""]:
            self._sink.log(self.id, part)


class TaskContext(_ContextBase):
    """Context for thread-mode work: ``checkpoint()`` blocks while paused."""

    def __init__(self, task_id: str, attempt: int, worker: str, sink: ContextSink) -> None:
        super().__init__(task_id, attempt, worker, sink)
        self._running = threading.Event()
        self._running.set()
        self._cancel_wake = threading.Event()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def checkpoint(self) -> None:
        """Block while the task is paused; raise :class:`TaskCancelled` once it is cancelled."""
        if self._cancel_reason is None and self._running.is_set():
            return
        self._running.wait()
        if self._cancel_reason is not None:
            raise TaskCancelled(self._cancel_reason)

    def sleep(self, seconds: float) -> None:
        """Sleep that honours pause and cancel (paused time does not count)."""
        deadline = time.monotonic() + seconds
        while True:
            self.checkpoint()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            started = time.monotonic()
            # Wake early on cancel; a pause is noticed at the next checkpoint.
            self._cancel_wake.wait(min(left, 0.1))
            if self.paused:
                deadline += time.monotonic() - started

    # -- control, called by the engine ------------------------------------------------------
    def _pause(self) -> None:
        self._running.clear()

    def _resume(self) -> None:
        self._running.set()

    def _cancel(self, reason: str) -> None:
        self._cancel_reason = reason
        self._cancel_wake.set()
        self._running.set()


class AsyncTaskContext(_ContextBase):
    """Context for async work: ``await checkpoint()`` waits while paused."""

    def __init__(self, task_id: str, attempt: int, worker: str, sink: ContextSink) -> None:
        super().__init__(task_id, attempt, worker, sink)
        self._paused = False
        # Set while not paused; made only when a checkpoint has to wait (most runs never pause,
        # and an Event made per run was ~1 us of the event loop's time per task).
        self._running: asyncio.Event | None = None

    @property
    def paused(self) -> bool:
        return self._paused

    async def checkpoint(self) -> None:
        """Wait while the task is paused; raise :class:`TaskCancelled` once it is cancelled."""
        if self._cancel_reason is None and not self._paused:
            return
        if self._running is None:
            self._running = asyncio.Event()
            if not self._paused:
                self._running.set()
        await self._running.wait()
        if self._cancel_reason is not None:
            raise TaskCancelled(self._cancel_reason)

    async def sleep(self, seconds: float) -> None:
        """Sleep that honours pause and cancel (paused time does not count)."""
        loop = asyncio.get_running_loop()
        left = seconds
        while left > 0:
            await self.checkpoint()
            started = loop.time()
            try:
                await asyncio.wait_for(self._wait_paused(), timeout=left)
            except TimeoutError:
                return
            left -= loop.time() - started

    async def _wait_paused(self) -> None:
        while not self._paused:
            self._paused_signal = asyncio.Event()
            await self._paused_signal.wait()

    _paused_signal: asyncio.Event | None = None

    def _pause(self) -> None:
        self._paused = True
        if self._running is not None:
            self._running.clear()
        if self._paused_signal is not None:
            self._paused_signal.set()

    def _resume(self) -> None:
        self._paused = False
        if self._running is not None:
            self._running.set()

    def _cancel(self, reason: str) -> None:
        self._cancel_reason = reason
        self._paused = False
        if self._running is not None:
            self._running.set()
        if self._paused_signal is not None:
            self._paused_signal.set()
