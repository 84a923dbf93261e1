"""Start-up after a stop or a crash: end the processes the previous server's tasks left behind,
then re-queue or fail every task that held a slot (the queue itself needs nothing: it is the
store's)."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from tasky import clock
from tasky.engine.announce import log_failed
from tasky.engine.lanes import Lane
from tasky.engine.leftovers import kill_leftovers
from tasky.store.base import Store

log = logging.getLogger("tasky.engine")


async def recover(store: Store, lanes: Mapping[str, Lane]) -> None:
    """On one node every task holding a slot at start was left by a stopped server: each is
    queued again if its worker is safe to re-run, Failed otherwise."""
    await end_leftover_children(store)
    now = clock.now()
    for record in await store.held_tasks():
        lane = lanes.get(record.worker)
        if lane is not None and lane.worker.idempotent:
            await store.requeue_interrupted(
                record.id,
                record.owner,
                record.attempt,
                "the server stopped during this attempt",
                now,
            )
            continue
        reason = (
            "the server stopped while the task was running and the worker is not safe to re-run"
            if lane is not None
            else f"the server stopped while the task was running; worker {record.worker} is gone"
        )
        if await store.fail_interrupted(record.id, record.owner, record.attempt, reason, now):
            log_failed(record, reason)


async def end_leftover_children(store: Store) -> None:
    """End the processes that tasks of a killed server started, before anything re-runs."""
    children = await store.children()
    if not children:
        return
    killed = kill_leftovers(children)
    if killed:
        log.warning(
            "ended %d process(es) left running by tasks of the previous server: %s",
            len(killed),
            ", ".join(map(str, killed)),
        )
    await store.forget_children([child.task_id for child in children])
