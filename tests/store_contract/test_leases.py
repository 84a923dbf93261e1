"""heartbeat, release and held_tasks: leases, and what recovery finds."""

from __future__ import annotations

import asyncio

from tasky import clock
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


async def test_heartbeat_extends_only_the_leases_the_owner_holds(store: Store) -> None:
    mine = await running(store, owner=OWNER)
    theirs = await running(store, owner=OTHER)
    queued = await store.submit(task())
    ids = [mine.id, theirs.id, queued.id, "f" * 32]
    assert await store.heartbeat(OWNER, ids, 9500.0) == 1
    assert (await stored(store, mine.id)).lease_until == 9500.0
    assert (await stored(store, theirs.id)).lease_until == theirs.lease_until


async def test_a_paused_running_task_keeps_its_lease_alive(store: Store) -> None:
    paused = await running(store)
    assert await store.pause(paused.id, OWNER, 1003.0)
    assert await store.heartbeat(OWNER, [paused.id], 9500.0) == 1


async def test_heartbeat_no_longer_counts_an_ended_task(store: Store) -> None:
    ended = await running(store)
    assert await store.finish(ended.id, OWNER, 1, outcome())
    assert await store.heartbeat(OWNER, [ended.id], 9500.0) == 0


async def test_held_tasks_are_the_claimed_ones_that_have_not_ended(store: Store) -> None:
    first = await running(store)
    paused = await running(store, started_at=1003.0)
    assert await store.pause(paused.id, OWNER, 1003.0)
    ended = await running(store, started_at=1004.0)
    assert await store.finish(ended.id, OWNER, 1, outcome())
    held_back = await store.submit(task())
    assert await store.pause(held_back.id, None, 1003.0)
    await store.submit(task())
    held = await store.held_tasks()
    assert [t.id for t in held] == [first.id, paused.id]
    assert [t.status for t in held] == [Status.RUNNING, Status.PAUSED]
    assert held[0] == await stored(store, first.id)


async def test_held_tasks_can_be_limited_to_expired_leases(store: Store) -> None:
    await store.submit(task())
    await store.submit(task())
    [short] = await store.claim("W", claim(count=1, lease_until=1100.0), 1001.0)
    [long] = await store.claim("W", claim(count=1, lease_until=1300.0), 1001.0)
    assert [t.id for t in await store.held_tasks(expired_before=1200.0)] == [short.id]
    assert await store.held_tasks(expired_before=1100.0) == []  # strictly before
    assert len(await store.held_tasks(expired_before=1301.0)) == 2
    assert await store.heartbeat(OWNER, [short.id], 1250.0) == 1
    assert await store.held_tasks(expired_before=1200.0) == []
    assert long.lease_until == 1300.0


async def test_release_expires_the_owner_leases_now(store: Store) -> None:
    """A stopping engine hands its tasks to another engine's recovery at once."""
    lease = clock.now() + 3600
    mine = [await running(store, owner=OWNER, lease_until=lease) for _ in range(2)]
    await store.submit(task())
    [theirs] = await store.claim("W", claim(OTHER, lease_until=lease), 1003.0)
    soon = clock.now() + 1
    assert await store.held_tasks(expired_before=soon) == []
    assert await store.release(OWNER) == 2
    expired = await store.held_tasks(expired_before=soon)
    assert sorted(t.id for t in expired) == sorted(t.id for t in mine)
    assert (await stored(store, theirs.id)).lease_until == lease
    assert await store.release("nobody") == 0


async def _sweep(store: Store, now: float) -> list[str]:
    """What an engine's sweep does with the store: take every task whose lease ran out, each
    by a compare-and-set on the owner and attempt it saw; the ids this sweep took."""
    took = []
    for held in await store.held_tasks(expired_before=now):
        if await store.requeue_interrupted(held.id, held.owner, held.attempt, "lease ran out", now):
            took.append(held.id)
    return took


async def test_two_sweeps_racing_take_each_expired_task_once(store: Store) -> None:
    """Two nodes sweeping at once: every expired task is taken by exactly one of them, its
    attempt recorded once and its slot freed once; a live lease is left alone."""
    expired = [await running(store, owner=OWNER, lease_until=1100.0) for _ in range(6)]
    live = await running(store, owner=OTHER, lease_until=9000.0)
    first, second = await asyncio.gather(_sweep(store, 1200.0), _sweep(store, 1200.0))
    assert sorted(first + second) == sorted(t.id for t in expired)
    assert not set(first) & set(second)
    for t in expired:
        got = await stored(store, t.id)
        assert (got.status, got.attempt, got.owner) == (Status.QUEUED, 2, None)
        [attempt] = await store.attempts(t.id)
        assert (attempt.attempt, attempt.status, attempt.error) == (
            1,
            Status.FAILED,
            "lease ran out",
        )
    assert (await stored(store, live.id)).status is Status.RUNNING
    # Every freed slot is free once: a limit of 7 leaves room for the 6 again, no more.
    taken = await store.claim("W", claim(OTHER, limit=7), 1300.0)
    assert sorted(t.id for t in taken) == sorted(t.id for t in expired)
    assert len(await store.claim("W", claim(OTHER, limit=8), 1300.0)) == 0


async def test_a_sweep_failing_and_one_requeueing_a_task_move_it_once(store: Store) -> None:
    """One node fails the task (it lacks an idempotent worker), another re-queues it: one wins."""
    started = await running(store, owner=OWNER, lease_until=1100.0)
    failed, requeued = await asyncio.gather(
        store.fail_interrupted(started.id, OWNER, 1, "node-a stopped", 1200.0),
        store.requeue_interrupted(started.id, OWNER, 1, "node-a stopped", 1200.0),
    )
    assert [failed, requeued].count(True) == 1
    got = await stored(store, started.id)
    assert got.status is (Status.FAILED if failed else Status.QUEUED)
    assert len(await store.attempts(started.id)) == 1


async def test_a_late_heartbeat_does_not_undo_a_take(store: Store) -> None:
    """The owner froze past its lease, another node took the task; when the owner wakes, its
    heartbeat, finish and retry are refused and the record keeps one owner per attempt."""
    started = await running(store, owner=OWNER, lease_until=1100.0)
    assert await _sweep(store, 1200.0) == [started.id]
    [again] = await store.claim("W", claim(OTHER), 1201.0)
    assert (again.attempt, again.owner) == (2, OTHER)
    assert await store.heartbeat(OWNER, [started.id], 9500.0) == 0
    assert not await store.finish(started.id, OWNER, 1, outcome(at=1202.0))
    assert not await store.retry_later(started.id, OWNER, 1, "late", 1300.0, 1202.0)
    assert await store.finish(started.id, OTHER, 2, outcome(at=1203.0))
    attempts = await store.attempts(started.id)
    assert [(a.attempt, a.status) for a in attempts] == [
        (1, Status.FAILED),
        (2, Status.COMPLETED),
    ]
