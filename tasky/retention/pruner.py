"""The pruner: deletes in small batches and steps aside between them, so submits never wait long."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tasky import clock
from tasky.batches import drain
from tasky.retention.plan import Pass, passes
from tasky.store.base import Store
from tasky.store.chain_base import ChainStore
from tasky.workers.base import Worker

log = logging.getLogger("tasky.retention")

# Tasks deleted per write. A submit that arrives while a write runs waits for it (it commits
# in the next group commit), so writes are kept small: 500 made the median submit 17x slower in
# bench --only retention; see docs/retention.md for the figures.
BATCH = 100
# Writes per pass and round (5 M tasks); the next round picks up whatever is left.
MAX_BATCHES = 50_000


@dataclass(slots=True)
class Pruned:
    tasks: int = 0
    chains: int = 0


async def prune(
    store: Store, chains: ChainStore | None, work: Sequence[Pass], *, dry_run: bool = False
) -> Pruned:
    """Run the passes; with ``dry_run``, count what they would delete instead."""
    done = Pruned()
    for step in work:
        if step.chains:
            if chains is None:
                continue
            if dry_run:
                done.chains += await chains.count_prunable(step.before)
            else:
                done.chains += await _prune_chains(chains, step.before)
        elif dry_run:
            done.tasks += await store.count_prunable(step.before, step.worker)
        else:
            delete = functools.partial(store.prune_finished, step.before, step.worker)
            done.tasks += await drain(delete, BATCH, MAX_BATCHES)
    return done


async def _prune_chains(chains: ChainStore, before: float) -> int:
    """Delete finished chains a write of at most BATCH rows (tasks, steps, chain rows) at a
    time, a long chain over several writes; returns how many chains went whole."""
    gone = 0

    async def delete(limit: int) -> int:
        nonlocal gone
        pruned = await chains.prune_finished(before, limit)
        gone += pruned.chains
        return pruned.rows

    await drain(delete, BATCH, MAX_BATCHES)
    return gone


async def prune_forever(
    store: Store,
    chains: ChainStore | None,
    workers: Iterable[Worker],
    default_days: float,
    interval: float,
) -> None:
    """The background pruner: at start-up, then every ``interval`` seconds."""
    registered = list(workers)
    while True:
        work = passes(registered, default_days, clock.now())
        try:
            done = await prune(store, chains, work)
        except Exception:  # a full disk, say: try again next time, keep serving
            log.exception("pruning finished tasks failed")
        else:
            if done.tasks or done.chains:
                log.info(
                    "pruned %d finished tasks and %d finished chains past their retention",
                    done.tasks,
                    done.chains,
                )
        await asyncio.sleep(interval)
