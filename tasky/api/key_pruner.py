"""Forget expired Idempotency-Keys in the background, in small batches.

An expired key is already ignored by submits (a new request replaces it); pruning only keeps the
table from growing forever. Small batches keep the store's single writer free for submits.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from typing import Any

from tasky import clock
from tasky.batches import drain, interval_for, repeat
from tasky.store.base import Store

log = logging.getLogger("tasky.idempotency")

PRUNE_BATCH = 500
# Bounded: what is left waits for the next round rather than holding the writer.
_PRUNE_ROUNDS = 200


async def prune_once(store: Store, now: float | None = None) -> int:
    """Delete keys that expired before ``now``; returns how many went."""
    before = clock.now() if now is None else now
    return await drain(functools.partial(store.prune_keys, before), PRUNE_BATCH, _PRUNE_ROUNDS)


async def prune_forever(store: Store, window: float) -> None:
    await repeat(interval_for(window), lambda: prune_once(store), log, "expired idempotency keys")


def install(state: Any, store: Store, window: float) -> None:
    """Run the pruner while the app runs (``app.state``'s start and stop hooks)."""
    running: list[asyncio.Task[None]] = []

    async def start(engine: Any) -> None:
        running.append(asyncio.create_task(prune_forever(store, window)))

    async def stop(engine: Any) -> None:
        for task in running:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        running.clear()

    state.startup_hooks.append(start)
    state.shutdown_hooks.append(stop)
