"""Deleting old rows in small batches, in the background, without holding the store's writer.

The store has one writer: a submit that arrives while a large delete runs waits for it. So every
pruner (finished tasks, the audit log, expired idempotency keys) deletes a batch at a time and
steps aside between batches at least as long as the last batch took.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from tasky import clock

# Between writes, never less than this (seconds), so queued submits commit on their own.
PAUSE = 0.005


async def drain(
    delete: Callable[[int], Awaitable[int]], batch: int, max_batches: int = 50_000
) -> int:
    """Call ``delete(batch)`` until it deletes fewer than ``batch`` rows (or ``max_batches``
    calls: what is left waits for the next round); returns how many rows went."""
    total = 0
    for _ in range(max_batches):
        started = clock.monotonic()
        deleted = await delete(batch)
        total += deleted
        if deleted < batch:
            break
        await asyncio.sleep(max(PAUSE, clock.monotonic() - started))
    return total


def interval_for(period: float) -> float:
    """How often to prune what expires after ``period`` seconds: ten times per period, but no
    more than once a second and at least hourly."""
    return min(3600.0, max(1.0, period / 10))


async def repeat(
    interval: float, prune: Callable[[], Awaitable[int]], log: logging.Logger, what: str
) -> None:
    """Run ``prune`` now and then every ``interval`` seconds until cancelled; a failure (a full
    disk, say) is logged and tried again next time, the server keeps serving."""
    while True:
        try:
            pruned = await prune()
        except Exception:
            log.exception("pruning %s failed", what)
        else:
            if pruned:
                log.info("pruned %d %s", pruned, what)
        await asyncio.sleep(interval)
