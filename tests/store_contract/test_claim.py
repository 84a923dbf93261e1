"""claim and next_runnable_at: the queue of record is the store."""

from __future__ import annotations

from tasky.states import Status
from tasky.store import Store
from tests.store_contract.records import (
    OTHER,
    OWNER,
    claim,
    outcome,
    running,
    stored,
    task,
)


async def test_claim_starts_the_oldest_tasks_up_to_the_free_slots(store: Store) -> None:
    queued = [await store.submit(task(queued_at=1000.0 + i)) for i in range(5)]
    got = await store.claim("W", claim(limit=3, lease_until=1100.0), 1010.0)
    assert [t.id for t in got] == [t.id for t in queued[:3]]
    for record in got:
        assert (record.status, record.owner, record.lease_until, record.started_at) == (
            Status.RUNNING,
            OWNER,
            1100.0,
            1010.0,
        )
        assert await stored(store, record.id) == record
    assert (await stored(store, queued[3].id)).status is Status.QUEUED
    assert await store.claim("W", claim(limit=3), 1011.0) == []


async def test_claim_takes_at_most_count(store: Store) -> None:
    for _ in range(4):
        await store.submit(task())
    assert len(await store.claim("W", claim(limit=10, count=1), 1001.0)) == 1
    assert len(await store.claim("W", claim(limit=10, count=2), 1001.0)) == 2
    assert len(await store.claim("W", claim(limit=10, count=5), 1001.0)) == 1


async def test_the_limit_counts_the_slots_of_every_owner(store: Store) -> None:
    for _ in range(5):
        await store.submit(task())
    assert len(await store.claim("W", claim(OWNER, limit=3, count=2), 1001.0)) == 2
    assert len(await store.claim("W", claim(OTHER, limit=3), 1001.0)) == 1
    assert await store.claim("W", claim(OTHER, limit=3), 1001.0) == []


async def test_a_paused_running_task_keeps_its_slot(store: Store) -> None:
    paused = await running(store)
    assert await store.pause(paused.id, OWNER, 1003.0)
    await store.submit(task())
    assert await store.claim("W", claim(limit=1), 1003.0) == []
    assert len(await store.claim("W", claim(limit=2), 1003.0)) == 1


async def test_a_held_back_task_takes_no_slot_and_is_not_claimed(store: Store) -> None:
    held = await store.submit(task())
    assert await store.pause(held.id, None, 1003.0)
    waiting = await store.submit(task(queued_at=1001.0))
    got = await store.claim("W", claim(limit=1), 1002.0)
    assert [t.id for t in got] == [waiting.id]


async def test_an_ended_task_frees_its_slot(store: Store) -> None:
    first = await running(store)
    second = await store.submit(task(queued_at=1003.0))
    assert await store.claim("W", claim(limit=1), 1004.0) == []
    assert await store.finish(first.id, OWNER, 1, outcome())
    got = await store.claim("W", claim(limit=1), 1006.0)
    assert [t.id for t in got] == [second.id]


async def test_workers_have_separate_queues_and_slots(store: Store) -> None:
    a = await store.submit(task(worker="A"))
    b = await store.submit(task(worker="B"))
    assert [t.id for t in await store.claim("B", claim(limit=1), 1001.0)] == [b.id]
    assert [t.id for t in await store.claim("A", claim(limit=1), 1001.0)] == [a.id]
    assert await store.claim("Nobody", claim(), 1001.0) == []


async def test_a_retry_is_not_claimed_before_its_backoff_ends(store: Store) -> None:
    failed = await running(store)
    assert await store.retry_later(failed.id, OWNER, 1, "boom", 1500.0, 1003.0)
    assert await store.claim("W", claim(), 1499.0) == []
    [again] = await store.claim("W", claim(), 1500.0)
    assert (again.id, again.attempt, again.started_at) == (failed.id, 2, 1500.0)


async def test_queue_order_is_the_order_tasks_rejoined_the_queue(store: Store) -> None:
    """Submit, resume of a held-back task, re-run, and for a retry the end of its backoff."""
    retried = await running(store, queued_at=900.0, started_at=901.0)
    assert await store.retry_later(retried.id, OWNER, 1, "boom", 1500.0, 902.0)
    rerun = await running(store, queued_at=903.0, started_at=904.0)
    assert await store.finish(rerun.id, OWNER, 1, outcome(at=905.0))
    resumed = await store.submit(task(queued_at=1000.0))
    assert await store.pause(resumed.id, None, 1003.0)
    plain = await store.submit(task(queued_at=1100.0))
    late = await store.submit(task(queued_at=1600.0))
    assert await store.resume(resumed.id, None, 1200.0)
    assert await store.rerun(rerun.id, 1300.0)
    got = await store.claim("W", claim(), 2000.0)
    assert [t.id for t in got] == [plain.id, resumed.id, rerun.id, retried.id, late.id]


async def test_equal_queue_times_go_in_submit_order(store: Store) -> None:
    tasks = [await store.submit(task(queued_at=1000.0)) for _ in range(5)]
    got = await store.claim("W", claim(), 1000.0)
    assert [t.id for t in got] == [t.id for t in tasks]


async def test_a_claimed_task_is_not_claimed_again(store: Store) -> None:
    await store.submit(task())
    [first] = await store.claim("W", claim(OWNER), 1001.0)
    assert await store.claim("W", claim(OTHER), 1002.0) == []
    assert (await stored(store, first.id)).owner == OWNER


# -- next_runnable_at -----------------------------------------------------------------------------
async def test_next_runnable_at_is_none_without_queued_tasks(store: Store) -> None:
    assert await store.next_runnable_at("W") is None
    await running(store)
    assert await store.next_runnable_at("W") is None


async def test_next_runnable_at_is_the_queue_time_of_a_task_without_backoff(
    store: Store,
) -> None:
    await store.submit(task(queued_at=1010.0))
    await store.submit(task(queued_at=1020.0))
    assert await store.next_runnable_at("W") == 1010.0
    assert await store.next_runnable_at("Other") is None


async def test_next_runnable_at_is_the_earliest_end_of_a_backoff(store: Store) -> None:
    for run_after in (1800.0, 1500.0):
        failed = await running(store)
        assert await store.retry_later(failed.id, OWNER, 1, "boom", run_after, 1003.0)
    assert await store.next_runnable_at("W") == 1500.0
    await store.submit(task(queued_at=1400.0))
    assert await store.next_runnable_at("W") == 1400.0
