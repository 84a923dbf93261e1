"""watch, request_action, take_requests and the change log: what nodes sharing a store tell
each other through it (a store one node uses alone has nobody to tell)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tasky.states import Status
from tasky.store import Store
from tasky.store.records import Wakeup
from tests.store_contract.backends import StoreFactory
from tests.store_contract.records import OTHER, OWNER, claim, outcome, running, task


async def test_a_request_is_kept_for_the_owner_and_handed_out_once(store: Store) -> None:
    mine = await running(store, owner=OWNER)
    assert await store.request_action(mine.id, OWNER, 1, "pause", 1010.0)
    assert await store.take_requests(OTHER) == []
    [request] = await store.take_requests(OWNER)
    assert (request.task_id, request.attempt, request.action, request.at) == (
        mine.id,
        1,
        "pause",
        1010.0,
    )
    assert await store.take_requests(OWNER) == []


async def test_a_newer_request_replaces_an_older_one(store: Store) -> None:
    mine = await running(store)
    assert await store.request_action(mine.id, OWNER, 1, "pause", 1010.0)
    assert await store.request_action(mine.id, OWNER, 1, "cancel", 1011.0)
    assert [(r.action, r.at) for r in await store.take_requests(OWNER)] == [("cancel", 1011.0)]


async def test_requests_come_oldest_first(store: Store) -> None:
    first = await running(store, worker="A")
    second = await running(store, worker="B")
    assert await store.request_action(second.id, OWNER, 1, "cancel", 1012.0)
    assert await store.request_action(first.id, OWNER, 1, "pause", 1011.0)
    assert [r.task_id for r in await store.take_requests(OWNER)] == [first.id, second.id]


async def test_a_request_for_an_attempt_the_owner_does_not_hold_is_refused(
    store: Store,
) -> None:
    mine = await running(store)
    queued = await store.submit(task(worker="Q"))
    assert not await store.request_action(mine.id, OTHER, 1, "cancel", 1010.0)
    assert not await store.request_action(mine.id, OWNER, 2, "cancel", 1010.0)
    assert not await store.request_action(queued.id, OWNER, 1, "cancel", 1010.0)
    assert not await store.request_action("f" * 32, OWNER, 1, "cancel", 1010.0)
    assert await store.finish(mine.id, OWNER, 1, outcome())
    assert not await store.request_action(mine.id, OWNER, 1, "cancel", 1010.0)
    assert await store.take_requests(OWNER) == []


async def test_pruning_drops_untaken_requests_older_than_the_cut(store: Store) -> None:
    old = await running(store, worker="A")
    new = await running(store, worker="B")
    assert await store.request_action(old.id, OWNER, 1, "cancel", 1010.0)
    assert await store.request_action(new.id, OWNER, 1, "cancel", 1020.0)
    assert await store.prune_changes(1015.0) >= 1
    assert [r.task_id for r in await store.take_requests(OWNER)] == [new.id]


async def test_a_store_lists_no_change_of_its_own_as_news(store: Store) -> None:
    start = await store.last_change()
    submitted = await store.submit(task())
    await store.claim("W", claim(count=1), 1001.0)
    assert await store.finish(submitted.id, OWNER, 1, outcome())
    changes = await store.changes_since(start, 100)
    assert [c for c in changes if not c.here] == []
    assert await store.last_change() >= start


# -- stores that nodes share ------------------------------------------------------------------


@pytest.fixture
async def two_nodes(shared_backend: StoreFactory) -> AsyncIterator[tuple[Store, Store]]:
    first = await shared_backend.open()
    second = await shared_backend.open()
    yield first, second
    await second.close()
    await first.close()


async def test_another_nodes_changes_are_listed_in_order(two_nodes: tuple[Store, Store]) -> None:
    here, there = two_nodes
    start = await here.last_change()
    submitted = await there.submit(task())
    [claimed] = await there.claim("W", claim(OTHER, count=1), 1001.0)
    assert await there.finish(claimed.id, OTHER, 1, outcome())
    changes = await here.changes_since(start, 100)
    assert [(c.task_id, c.status, c.created, c.here) for c in changes] == [
        (submitted.id, Status.QUEUED, True, False),
        (submitted.id, Status.RUNNING, False, False),
        (submitted.id, Status.COMPLETED, False, False),
    ]
    assert changes[1].owner == OTHER and changes[0].worker == "W"
    assert [c.seq for c in changes] == sorted(c.seq for c in changes)
    # The writer sees the same entries as its own.
    assert [c.here for c in await there.changes_since(start, 100)] == [True, True, True]
    # Read from a position on, and again at a position asked for by name.
    assert await here.changes_since(changes[-1].seq, 100) == []
    again = await here.changes_since(changes[-1].seq, 100, [changes[0].seq])
    assert [c.seq for c in again] == [changes[0].seq]
    assert await here.last_change() == changes[-1].seq


async def test_pruning_forgets_old_changes(two_nodes: tuple[Store, Store]) -> None:
    here, there = two_nodes
    await there.submit(task())
    assert await here.changes_since(0, 100) != []
    assert await here.prune_changes(4_000_000_000.0) >= 1  # everything is older than that
    assert await here.changes_since(0, 100) == []


async def _hear(hints: asyncio.Queue[Wakeup], wanted: Wakeup) -> None:
    """Until ``wanted`` arrives, whatever else comes first; what came before is dropped."""
    while await asyncio.wait_for(hints.get(), 30) != wanted:
        pass
    while not hints.empty():
        hints.get_nowait()


async def test_a_watching_node_is_woken_by_another_nodes_writes(
    two_nodes: tuple[Store, Store],
) -> None:
    here, there = two_nodes
    hints: asyncio.Queue[Wakeup] = asyncio.Queue()
    here.watch(hints.put_nowait)
    await _listening(here)
    await there.submit(task())
    await _hear(hints, Wakeup("changes"))
    [claimed] = await there.claim("W", claim(OTHER, count=1), 1001.0)
    await _hear(hints, Wakeup("changes"))
    assert await there.request_action(claimed.id, OTHER, 1, "cancel", 1002.0)
    await _hear(hints, Wakeup("control", OTHER))
    assert await there.finish(claimed.id, OTHER, 1, outcome())
    await _hear(hints, Wakeup("changes"))


async def test_changes_say_which_may_make_a_task_runnable(
    two_nodes: tuple[Store, Store],
) -> None:
    here, there = two_nodes
    start = await here.last_change()
    first = await there.submit(task())  # queued: wakes
    await there.claim("W", claim(OTHER, count=1), 1001.0)  # took it: nothing to wake for
    assert await there.finish(first.id, OTHER, 1, outcome())  # nothing waits: no
    second = await there.submit(task())
    await there.claim("W", claim(OTHER, count=1), 1003.0)
    waiting = await there.submit(task())
    assert await there.finish(second.id, OTHER, 1, outcome(at=1004.0))  # a slot freed, one waits
    changes = await here.changes_since(start, 100)
    assert [(c.task_id, c.status, c.wakes) for c in changes] == [
        (first.id, Status.QUEUED, True),
        (first.id, Status.RUNNING, False),
        (first.id, Status.COMPLETED, False),
        (second.id, Status.QUEUED, True),
        (second.id, Status.RUNNING, False),
        (waiting.id, Status.QUEUED, True),
        (second.id, Status.COMPLETED, True),
    ]


async def _listening(store: Store) -> None:
    """Until the store's LISTEN is in place (notifications before it are not heard)."""
    listener = getattr(store, "listener", None)
    if listener is not None:
        await asyncio.wait_for(listener.connected.wait(), 30)
