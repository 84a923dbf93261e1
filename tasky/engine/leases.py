"""Leases: the engine extends the leases of the tasks running here, a third of a lease apart,
so a task whose node stopped can be told from one that is still running."""

from __future__ import annotations

import asyncio
import logging

from tasky import clock
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
