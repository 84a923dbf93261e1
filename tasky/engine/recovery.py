"""Taking back tasks whose node stopped: at start (what this node's previous run left), in a
sweep (what a dead or frozen node left, once its lease ran out) and at a graceful stop (what this
node still holds, so another node takes it at once). Each task is queued again if its worker is
safe to re-run, Failed otherwise; each take is a compare-and-set on the owner and attempt that
were seen, so two nodes taking the same task move it once. The queue itself needs nothing: it is
the store's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from tasky import clock
from tasky.engine.announce import log_failed
from tasky.engine.lanes import Lane
from tasky.engine.leftovers import kill_leftovers
from tasky.settings import owner_node
from tasky.states import Status
from tasky.store.base import Store
from tasky.store.records import TaskRecord

log = logging.getLogger("tasky.engine")

# Told about each task taken back: (task id, worker, new status, chain id).
Taken = Callable[[str, str, Status, str | None], None]


async def recover(store: Store, lanes: Mapping[str, Lane], owner: str, node: str) -> None:
    """At start. A store of its own (SQLite, memory): every task holding a slot was left by a
    stopped server. A shared store: only the tasks this node's earlier runs held (owners of the
    same node name; this run has claimed nothing yet) and, as a sweep would, those of other
    nodes whose lease ran out (of workers this node has); a task another live node runs is not
    touched."""
    await end_leftover_children(store, node)
    now = clock.now()
    held = await store.held_tasks()
    if store.shared:
        expired = {record.id for record in await store.held_tasks(expired_before=now)}
        held = [
            record
            for record in held
            if _mine(record.owner, owner, node) or (record.id in expired and record.worker in lanes)
        ]
    for record in held:
        if record.owner is not None and owner_node(record.owner) != node:
            why = f"node {record.owner} stopped renewing its lease while the task was running"
        else:
            why = "the server stopped while the task was running"
        await take(store, lanes, record, why, now)


def _mine(held_by: str | None, owner: str, node: str) -> bool:
    # No owner at all only comes from a hand-made row: nobody else will take it either.
    return held_by is None or held_by == owner or owner_node(held_by) == node


async def sweep(
    store: Store, lanes: Mapping[str, Lane], owner: str, taken: Taken | None = None
) -> int:
    """Take the tasks whose lease ran out (their node died, froze or lost the database), except
    this engine's own (they run here: a late heartbeat renews them) and those of workers this
    node does not have (a node that has the worker takes them). Returns how many it took."""
    now = clock.now()
    count = 0
    for record in await store.held_tasks(expired_before=now):
        if record.owner == owner or record.worker not in lanes:
            continue
        who = record.owner if record.owner is not None else "an unknown node"
        why = f"node {who} stopped renewing its lease while the task was running"
        status = await take(store, lanes, record, why, now)
        if status is None:
            continue  # another node took it first, or its owner ended it meanwhile
        count += 1
        if status is Status.QUEUED:  # a failed one has its own line (log_failed)
            log.warning("task %s (worker %s) queued again: %s", record.id, record.worker, why)
        if taken is not None:
            taken(record.id, record.worker, status, record.chain_id)
    return count


async def release_held(
    store: Store, lanes: Mapping[str, Lane], owner: str, taken: Taken | None = None
) -> int:
    """A graceful stop: what ``owner`` still holds (its work was stopped) is taken now, as the
    next start would, so another node runs it without waiting for the lease to run out."""
    now = clock.now()
    count = 0
    for record in await store.held_tasks():
        if record.owner != owner:
            continue
        why = f"node {owner} stopped (a graceful stop) while the task was running"
        status = await take(store, lanes, record, why, now)
        if status is not None:
            count += 1
            if taken is not None:
                taken(record.id, record.worker, status, record.chain_id)
    return count


async def take(
    store: Store, lanes: Mapping[str, Lane], record: TaskRecord, why: str, at: float
) -> Status | None:
    """Queue ``record`` again (idempotent worker) or fail it, if it is still held by the owner
    at the attempt seen; the status it now has, or None when it was not (someone moved it)."""
    lane = lanes.get(record.worker)
    if lane is not None and lane.worker.idempotent:
        if await store.requeue_interrupted(record.id, record.owner, record.attempt, why, at):
            return Status.QUEUED
        return None
    reason = (
        f"{why} and the worker is not safe to re-run"
        if lane is not None
        else f"{why}; worker {record.worker} is gone"
    )
    if await store.fail_interrupted(record.id, record.owner, record.attempt, reason, at):
        log_failed(record, reason)
        return Status.FAILED
    return None


async def end_leftover_children(store: Store, node: str) -> None:
    """End the processes that tasks of this node's killed server started, before anything
    re-runs (another node's children are that node's business, even on the same host)."""
    children = [child for child in await store.children() if child.node in (node, None)]
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
