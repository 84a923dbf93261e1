"""Graceful shutdown: the first SIGTERM or SIGINT drains the server, a second one stops it at once.

Draining: submits, re-runs and new chains answer 503 with Retry-After (engine.errors.Draining),
nothing more is dispatched and chains start no new step, while reads and event streams go on.
Running tasks get ``grace`` seconds to finish. Then uvicorn's own shutdown runs: event streams
end, connections close, and the engine's stop abandons what still runs (its process groups get
SIGTERM, then SIGKILL after the worker's kill_grace), leaving it Running in the store for the next
start's recovery (tasky.engine.recovery) to re-queue or fail: that stays the one place that
decides. On a store shared by many nodes, the engine's stop applies that decision at once
(recovery.release_held), so another node takes the work without waiting for the lease.

A second signal ends the drain at once, and the engine's stop kills task processes without their
grace. Either way the process exits with code 0: uvicorn would raise the captured signal again
once stopped, which makes a stop that was asked for and carried out look like a crash.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from types import FrameType
from typing import Any

import uvicorn

from tasky.api import TaskyApp
from tasky.api.events import end_streams
from tasky.engine import Engine

log = logging.getLogger("tasky")


class GracefulServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: TaskyApp, grace: float) -> None:
        super().__init__(config)
        self._app = app
        self._grace = grace
        self._signals = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain: asyncio.Task[None] | None = None

    def _engine(self) -> Engine | None:
        engine: Engine | None = getattr(self._app.state, "engine", None)
        return engine

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # A signal handler may interrupt the loop anywhere: it only sets flags and hands the
        # work to the loop. Not calling super(): it records the signal to raise it again later.
        self._signals += 1
        loop = self._loop
        if self._signals > 1:
            self.force_exit = True  # uvicorn stops waiting for connections to close
            self.should_exit = True
        if loop is None:
            self.should_exit = True
            return
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        callback = self._begin_drain if self._signals == 1 else self._hurry
        loop.call_soon_threadsafe(callback, name)

    def _begin_drain(self, name: str) -> None:
        engine = self._engine()
        if engine is None or self.should_exit:  # still starting, or already stopping
            self.should_exit = True
            return
        engine.drain(self._grace)
        log.info(
            "%s: shutting down; no new tasks; %d running task(s) get up to %g s to finish "
            "(a second signal stops at once)",
            name,
            engine.busy(),
            self._grace,
        )
        self._drain = asyncio.ensure_future(self._finish_drain(engine))

    async def _finish_drain(self, engine: Engine) -> None:
        try:
            if not await engine.wait_idle(self._grace):
                log.warning(
                    "the grace of %g s is over: stopping %d running task(s); they are re-queued "
                    "(idempotent workers) or failed (at the next start, or at once with --db)",
                    self._grace,
                    engine.busy(),
                )
        finally:
            self.should_exit = True

    def _hurry(self, name: str) -> None:
        log.warning("%s again: stopping at once", name)
        engine = self._engine()
        if engine is not None:
            engine.hurry()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self._drain is not None:
            self._drain.cancel()
        # Open event streams never end by themselves and would hold the graceful shutdown for its
        # whole timeout: end them first (the client sees the stream close), then let uvicorn
        # close what is left.
        end_streams(self._engine())
        await super().shutdown(sockets)
        lifespan: Any = self.lifespan
        if not lifespan.shutdown_event.is_set():
            # A second signal made uvicorn skip the application's shutdown: the engine must
            # still stop (its task processes killed, pending writes flushed, the store closed).
            await lifespan.shutdown()
