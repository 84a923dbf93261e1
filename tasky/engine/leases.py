"""Leases: the engine extends the leases of the tasks running here, a third of a lease apart,
so a task whose node stopped can be told from one that is still running; on a store shared by
many nodes, it also sweeps: takes the tasks whose lease ran out (tasky.engine.recovery.sweep)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from tasky import clock
from tasky.engine.lanes import Lane
from tasky.engine.recovery import Taken, sweep
from tasky.engine.runs import Runs
from tasky.store.base import Store

log = logging.getLogger("tasky.engine")


async def heartbeat_loop(store: Store, owner: str, runs: Runs, lease_seconds: float) -> None:
    interval = lease_seconds / 3
    while True:
        await asyncio.sleep(interval)
        ids = runs.ids()
        if ids:
            try:
                await store.heartbeat(owner, ids, clock.now() + lease_seconds)
            except Exception:
                log.exception("extending leases failed")


async def sweep_loop(
    store: Store, lanes: Mapping[str, Lane], owner: str, interval: float, taken: Taken
) -> None:
    """Every ``interval`` seconds, take the tasks of nodes that stopped renewing their leases:
    a dead node's work is re-run or failed within its lease plus this interval."""
    while True:
        await asyncio.sleep(interval)
        try:
            await sweep(store, lanes, owner, taken)
        except Exception:
            log.exception("taking tasks whose lease ran out failed")
