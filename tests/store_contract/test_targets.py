"""Targeted tasks: a claim starts only untargeted tasks and those aimed at its node or labels;
a task waiting for another node blocks nobody."""

from __future__ import annotations

from tasky.states import Status
from tasky.store import Store
from tasky.store.records import Claim
from tests.store_contract.records import LEASE, OTHER, OWNER, outcome, stored, task


def node_claim(node: str, *labels: str, limit: int = 10, count: int | None = None) -> Claim:
    owner = OWNER if node == "a" else OTHER
    targets = (f"node:{node}", *(f"label:{label}" for label in labels))
    return Claim(owner, LEASE, limit, count, node=node, targets=targets)


async def test_a_task_targeted_at_b_does_not_stop_a_claiming_the_next_untargeted_task(
    store: Store,
) -> None:
    for_b = await store.submit(task(target="node:b"))
    anyone = await store.submit(task(queued_at=1001.0))
    # The limit is 1: the waiting task for b must take no slot from a's claim either.
    got = await store.claim("W", node_claim("a", limit=1), 1002.0)
    assert [t.id for t in got] == [anyone.id]
    assert got[0].node == "a"
    assert (await stored(store, for_b.id)).status is Status.QUEUED
    # The cluster-wide limit still holds for b: the slot is a's until its task ends.
    assert await store.claim("W", node_claim("b", limit=1), 1003.0) == []
    got_b = await store.claim("W", node_claim("b", limit=2), 1003.0)
    assert [t.id for t in got_b] == [for_b.id]
    assert (await stored(store, for_b.id)).node == "b"


async def test_claims_honour_node_and_label_targets_in_queue_order(store: Store) -> None:
    gpu = await store.submit(task(target="label:gpu", queued_at=1000.0))
    for_a = await store.submit(task(target="node:a", queued_at=1001.0))
    anyone = await store.submit(task(queued_at=1002.0))
    for_c = await store.submit(task(target="node:c", queued_at=1003.0))
    got_b = await store.claim("W", node_claim("b", "gpu"), 1010.0)
    assert [t.id for t in got_b] == [gpu.id, anyone.id]
    got_a = await store.claim("W", node_claim("a"), 1010.0)
    assert [t.id for t in got_a] == [for_a.id]
    assert (await stored(store, for_c.id)).status is Status.QUEUED
    # A claim without targets (no node name) takes only untargeted tasks.
    assert await store.claim("W", Claim(OWNER, LEASE, 10), 1010.0) == []


async def test_a_submit_that_claims_starts_a_task_past_one_waiting_for_another_node(
    store: Store,
) -> None:
    for_b = await store.submit(task(target="node:b"))
    started = await store.submit(task(queued_at=1001.0), node_claim("a", limit=2))
    assert (started.status, started.node) == (Status.RUNNING, "a")
    # A task for another node is never started by a's claim, even with room.
    not_mine = await store.submit(task(target="node:b", queued_at=1002.0), node_claim("a"))
    assert not_mine.status is Status.QUEUED
    assert (await stored(store, not_mine.id)).target == "node:b"
    mine = await store.submit(task(target="node:a", queued_at=1003.0), node_claim("a", limit=3))
    assert mine.status is Status.RUNNING
    assert (await stored(store, for_b.id)).status is Status.QUEUED


async def test_a_waiting_task_this_node_may_take_keeps_fifo_for_a_submit(store: Store) -> None:
    waiting = await store.submit(task(target="label:gpu"))
    later = await store.submit(task(queued_at=1001.0), node_claim("a", "gpu", limit=5))
    assert later.status is Status.QUEUED  # the gpu task waits ahead of it, and a may take it
    got = await store.claim("W", node_claim("a", "gpu"), 1002.0)
    assert [t.id for t in got] == [waiting.id, later.id]


async def test_a_batch_with_targets_starts_only_what_the_claim_may_take(store: Store) -> None:
    tasks = [task(target="node:b"), task(queued_at=1001.0), task(target="node:a", queued_at=1002.0)]
    got = await store.submit_many(tasks, node_claim("a", limit=5))
    assert [t.status for t in got] == [Status.QUEUED, Status.RUNNING, Status.RUNNING]
    assert [t.target for t in got] == ["node:b", None, "node:a"]


async def test_each_attempt_records_the_node_that_ran_it(store: Store) -> None:
    submitted = await store.submit(task())
    [first] = await store.claim("W", node_claim("a"), 1001.0)
    assert await store.requeue_interrupted(first.id, OWNER, 1, "node a stopped", 1002.0)
    [second] = await store.claim("W", node_claim("b"), 1003.0)
    assert await store.finish(second.id, OTHER, 2, outcome())
    attempts = await store.attempts(submitted.id)
    assert [(a.attempt, a.node) for a in attempts] == [(1, "a"), (2, "b")]
    assert (await stored(store, submitted.id)).node == "b"
    never = await store.submit(task(queued_at=1004.0))
    assert await store.cancel(never.id, 1005.0)
    assert [a.node for a in await store.attempts(never.id)] in ([], [None])


async def test_next_runnable_at_with_targets_sees_only_what_the_claim_may_take(
    store: Store,
) -> None:
    await store.submit(task(target="node:b", queued_at=1000.0))
    assert await store.next_runnable_at("W") == 1000.0
    assert await store.next_runnable_at("W", ("node:a", "label:gpu")) is None
    assert await store.next_runnable_at("W", ("node:b",)) == 1000.0
    await store.submit(task(target="label:gpu", queued_at=1001.0))
    await store.submit(task(queued_at=1002.0))
    assert await store.next_runnable_at("W", ("node:a", "label:gpu")) == 1001.0
    assert await store.next_runnable_at("W", ()) == 1002.0
