"""Forget expired Idempotency-Keys in the background, in small batches.

An expired key is already ignored by submits (a new request replaces it); pruning only keeps the
table from growing forever. Small batches keep the store's single writer free for submits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from tasky import clock
from tasky.store.base import Store

log = logging.getLogger("tasky.idempotency")

PRUNE_BATCH = 500
# Bounded: what is left waits for the next round rather than holding the writer.
_PRUNE_ROUNDS = 200


async def prune_once(store: Store, now: float | None = None) -> int:
    """Delete keys that expired before ``now``; returns how many went."""
    before = clock.now() if now is None else now
    total = 0
    for _ in range(_PRUNE_ROUNDS):
        deleted = await store.prune_keys(before, PRUNE_BATCH)
        total += deleted
        if deleted < PRUNE_BATCH:
            break
    return total


def prune_interval(window: float) -> float:
    """Ten times per window, but no more than once a second and at least hourly."""
    return min(3600.0, max(1.0, window / 10))


async def prune_forever(store: Store, window: float) -> None:
    interval = prune_interval(window)
    while True:
        try:
            pruned = await prune_once(store)
        except Exception:  # a full disk, say: try again next time, keep serving
            log.exception("pruning expired idempotency keys failed")
        else:
            if pruned:
                log.info("forgot %d expired idempotency keys", pruned)
        await asyncio.sleep(interval)


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
