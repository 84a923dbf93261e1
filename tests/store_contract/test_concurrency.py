"""Claims and compare-and-sets under concurrency: two owners race on one worker.

Every racing call is gathered, so each store meets them the way it meets concurrent requests
(SQLite: in one group-commit batch; memory: interleaved on the event loop).
"""

from __future__ import annotations

import asyncio
import itertools

from tasky.states import Status
from tasky.store import Store, TaskRecord
from tests.store_contract.records import (
    OTHER,
    OWNER,
    claim,
    outcome,
    running,
    stored,
    task,
)

LIMIT = 5


async def _held_by_worker(store: Store, worker: str) -> list[TaskRecord]:
    return [t for t in await store.held_tasks() if t.worker == worker]


async def test_two_claimers_never_exceed_the_limit_nor_share_a_task(store: Store) -> None:
    await store.submit_many([task(queued_at=1000.0 + i) for i in range(60)])
    handed_out: list[str] = []
    at = 1100.0
    while True:
        owners = itertools.cycle([OWNER, OTHER])
        counts = itertools.cycle([1, None, 2])
        racing = [
            store.claim("W", claim(next(owners), limit=LIMIT, count=next(counts)), at)
            for _ in range(30)
        ]
        claimed = [t for got in await asyncio.gather(*racing) for t in got]
        held = await _held_by_worker(store, "W")
        assert len(held) <= LIMIT
        assert {t.id for t in claimed} <= {t.id for t in held}
        handed_out += [t.id for t in claimed]
        if not held:
            break
        # Half of what runs ends; the next round races for the freed slots.
        for record in held[: len(held) // 2 + 1]:
            assert await store.finish(record.id, record.owner or "", 1, outcome(at=at))
        at += 1.0
    assert len(handed_out) == len(set(handed_out)) == 60


async def test_claims_racing_submits_that_claim_stay_within_the_limit(store: Store) -> None:
    await store.submit_many([task() for _ in range(10)])
    racing = [store.submit(task(queued_at=1001.0), claim(OWNER, limit=3)) for _ in range(20)]
    racing += [store.claim("W", claim(OTHER, limit=3), 1001.0) for _ in range(20)]
    await asyncio.gather(*racing)
    held = await _held_by_worker(store, "W")
    assert len(held) == 3
    # Nobody jumped the queue: the tasks submitted first are the ones running.
    first_ten = {t.id for t in (await store.list_tasks(limit=10)).tasks}
    assert {t.id for t in held} <= first_ten


async def test_a_stale_owner_is_refused_after_another_took_over(store: Store) -> None:
    started = await running(store, owner=OWNER, lease_until=1100.0)
    # OTHER's recovery finds the lease expired, re-queues the attempt and claims the task.
    [expired] = await store.held_tasks(expired_before=1200.0)
    assert await store.requeue_interrupted(expired.id, OWNER, 1, "lease expired", 1200.0)
    [taken] = await store.claim("W", claim(OTHER, lease_until=1500.0), 1200.0)
    assert (taken.id, taken.attempt) == (started.id, 2)
    before = await stored(store, started.id)

    assert not await store.finish(started.id, OWNER, 1, outcome(at=1201.0))
    assert not await store.finish(started.id, OWNER, 2, outcome(at=1201.0))
    assert not await store.retry_later(started.id, OWNER, 1, "late", 1300.0, 1201.0)
    assert not await store.requeue_interrupted(started.id, OWNER, 1, "again", 1201.0)
    assert not await store.fail_interrupted(started.id, OWNER, 1, "again", 1201.0)
    assert not await store.pause(started.id, OWNER, 1003.0)
    assert await store.heartbeat(OWNER, [started.id], 9999.0) == 0

    assert await stored(store, started.id) == before
    [first_attempt] = await store.attempts(started.id)
    assert (first_attempt.attempt, first_attempt.error) == (1, "lease expired")
    assert await store.finish(started.id, OTHER, 2, outcome(at=1202.0))
    assert [a.attempt for a in await store.attempts(started.id)] == [1, 2]


async def test_a_finish_racing_recovery_ends_the_attempt_once(store: Store) -> None:
    started = await running(store)
    done, requeued = await asyncio.gather(
        store.finish(started.id, OWNER, 1, outcome(at=1005.0)),
        store.requeue_interrupted(started.id, OWNER, 1, "lease expired", 1005.0),
    )
    assert [done, requeued].count(True) == 1
    assert len(await store.attempts(started.id)) == 1
    assert (await store.worker_stats("W")).finished == 1


async def test_duplicate_finishes_of_one_attempt_record_it_once(store: Store) -> None:
    started = await running(store)
    statuses = [Status.COMPLETED, Status.FAILED, Status.CANCELED] * 4
    results = await asyncio.gather(
        *(store.finish(started.id, OWNER, 1, outcome(s, 1005.0)) for s in statuses)
    )
    assert results.count(True) == 1
    winner = statuses[results.index(True)]
    assert (await stored(store, started.id)).status is winner
    [attempt] = await store.attempts(started.id)
    assert attempt.status is winner
    assert (await store.worker_stats("W")).finished == 1
