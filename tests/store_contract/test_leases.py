"""heartbeat, release and held_tasks: leases, and what recovery finds."""

from __future__ import annotations

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
