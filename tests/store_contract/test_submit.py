"""submit, submit_many, submit_with_key, insert_many_now."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from tasky.ids import new_id
from tasky.states import Status
from tasky.store import IdempotencyRecord, Store, TaskRecord
from tasky.store.records import batch_ids
from tests.store_contract.backends import StoreFactory
from tests.store_contract.records import (
    OTHER,
    OWNER,
    claim,
    key,
    nonzero,
    running,
    stored,
    task,
)


async def test_a_submitted_task_is_stored_queued_as_given(store: Store) -> None:
    given = task(config={"nested": {"a": [1, 2]}, "s": "é"}, retries=2, timeout=1.5, chain_id="c1")
    returned = await store.submit(given)
    got = await stored(store, given.id)
    assert got == returned
    assert (got.worker, got.status, got.config, got.retries, got.timeout, got.chain_id) == (
        "W",
        Status.QUEUED,
        {"nested": {"a": [1, 2]}, "s": "é"},
        2,
        1.5,
        "c1",
    )
    assert (got.queued_at, got.started_at, got.owner, got.attempt) == (1000.0, None, None, 1)
    assert got.seq > 0
    assert await store.get(new_id()) is None


async def test_records_handed_over_or_returned_are_copies(store: Store) -> None:
    given = task(config={"list": [1]})
    returned = await store.submit(given)
    given.config["list"].append(2)
    returned.config["list"].append(3)
    assert (await stored(store, given.id)).config == {"list": [1]}


async def test_seq_follows_submit_order(store: Store) -> None:
    first, second = await store.submit(task()), await store.submit(task())
    assert first.seq < second.seq


async def test_concurrent_submits_all_commit(store: Store) -> None:
    tasks = [task() for _ in range(2000)]
    await asyncio.gather(*(store.submit(t) for t in tasks))
    for t in tasks[::97]:
        assert await store.get(t.id) is not None
    page = await store.list_tasks(limit=1000)
    assert len(page.tasks) == 1000 and page.next_cursor is not None
    assert nonzero((await store.worker_stats("W")).by_status) == {"Queued": 2000}


async def test_a_duplicate_id_raises_and_writes_nothing(
    backend: StoreFactory, store: Store
) -> None:
    first = await store.submit(task(config={"first": True}))
    again = dataclasses.replace(task(worker="Other"), id=first.id)
    with pytest.raises(backend.duplicate_error):
        await store.submit(again)
    assert await stored(store, first.id) == first
    assert nonzero((await store.worker_stats("Other")).by_status) == {}


# -- submit with a claim: the one-node fast path -------------------------------------------------
async def test_submit_with_claim_starts_at_once_on_a_free_slot(store: Store) -> None:
    started = await store.submit(task(queued_at=1000.0), claim(limit=1, lease_until=1030.0))
    assert (started.status, started.owner, started.lease_until) == (
        Status.RUNNING,
        OWNER,
        1030.0,
    )
    assert started.started_at == 1000.0  # a submit that claims starts at its queue time
    assert await stored(store, started.id) == started


async def test_submit_with_claim_queues_when_the_slots_are_taken(store: Store) -> None:
    await store.submit(task(), claim(limit=1))
    waiting = await store.submit(task(queued_at=1001.0), claim(limit=1))
    assert (waiting.status, waiting.owner, waiting.started_at) == (Status.QUEUED, None, None)


async def test_submit_with_claim_counts_the_slots_of_every_owner(store: Store) -> None:
    await store.submit(task(), claim(OWNER, limit=2))
    await store.submit(task(), claim(OTHER, limit=2))
    third = await store.submit(task(), claim(OTHER, limit=2))
    assert third.status is Status.QUEUED


async def test_submit_with_claim_never_jumps_a_runnable_queued_task(store: Store) -> None:
    ahead = await store.submit(task(queued_at=1000.0))
    behind = await store.submit(task(queued_at=1001.0), claim(limit=5))
    assert behind.status is Status.QUEUED
    assert (await stored(store, ahead.id)).status is Status.QUEUED


async def test_submit_with_claim_passes_a_task_waiting_out_its_backoff(store: Store) -> None:
    failed = await running(store)
    assert await store.retry_later(failed.id, OWNER, 1, "boom", 5000.0, 1003.0)
    passing = await store.submit(task(queued_at=1004.0), claim(limit=5))
    assert passing.status is Status.RUNNING


async def test_submit_with_claim_of_another_worker_is_not_held_up(store: Store) -> None:
    await store.submit(task(worker="Busy"), claim(limit=1))
    await store.submit(task(worker="Busy"))
    other = await store.submit(task(worker="Free"), claim(limit=1))
    assert other.status is Status.RUNNING


# -- submit_many ----------------------------------------------------------------------------------
async def test_submit_many_stores_all_in_order(store: Store) -> None:
    given = [task(queued_at=1000.0 + i) for i in range(5)]
    returned = await store.submit_many(given)
    assert [t.id for t in returned] == [t.id for t in given]
    assert [t.seq for t in returned] == sorted(t.seq for t in returned)
    listed = await store.list_tasks()
    assert [t.id for t in listed.tasks] == [t.id for t in given]


async def test_submit_many_with_claim_starts_each_in_turn_while_slots_last(store: Store) -> None:
    returned = await store.submit_many([task() for _ in range(3)], claim(limit=2))
    assert [t.status for t in returned] == [Status.RUNNING, Status.RUNNING, Status.QUEUED]


async def test_submit_many_with_claim_starts_at_most_its_count(store: Store) -> None:
    returned = await store.submit_many([task() for _ in range(3)], claim(limit=5, count=1))
    assert [t.status for t in returned] == [Status.RUNNING, Status.QUEUED, Status.QUEUED]


async def test_submit_many_writes_nothing_when_an_id_is_taken(
    backend: StoreFactory, store: Store
) -> None:
    existing = await store.submit(task(worker="Old"))
    batch = [task(), dataclasses.replace(task(), id=existing.id), task()]
    with pytest.raises(backend.duplicate_error):
        await store.submit_many(batch)
    assert await store.get(batch[0].id) is None and await store.get(batch[2].id) is None
    assert nonzero((await store.worker_stats("W")).by_status) == {}


async def test_submit_many_writes_nothing_when_an_id_is_given_twice(
    backend: StoreFactory, store: Store
) -> None:
    first = task()
    batch = [first, task(), dataclasses.replace(task(), id=first.id)]
    with pytest.raises(backend.duplicate_error):
        await store.submit_many(batch)
    assert await store.get(first.id) is None and await store.get(batch[1].id) is None


# -- submit_with_key ------------------------------------------------------------------------------
async def test_submit_with_key_stores_the_task_and_the_key(store: Store) -> None:
    first = task()
    returned = await store.submit_with_key(first, key(target_id=first.id))
    assert isinstance(returned, TaskRecord) and returned.id == first.id
    found = await store.find_key("ci", "k", 1001.0)
    assert found == key(target_id=first.id)


async def test_a_repeated_key_returns_its_record_and_writes_nothing(store: Store) -> None:
    first = task()
    await store.submit_with_key(first, key(target_id=first.id))
    second = task()
    returned = await store.submit_with_key(second, key(target_id=second.id, at=1030.0))
    assert returned == key(target_id=first.id)
    assert await store.get(second.id) is None


async def test_an_expired_key_is_replaced(store: Store) -> None:
    first, second = task(), task()
    await store.submit_with_key(first, key(target_id=first.id, at=1000.0))
    later = key(target_id=second.id, at=1061.0)  # the first counted until 1060
    returned = await store.submit_with_key(second, later)
    assert isinstance(returned, TaskRecord) and returned.id == second.id
    assert await store.find_key("ci", "k", 1062.0) == later


async def test_submit_with_key_and_claim_starts_the_task(store: Store) -> None:
    given = task()
    returned = await store.submit_with_key(given, key(target_id=given.id), claim(limit=1))
    assert isinstance(returned, TaskRecord) and returned.status is Status.RUNNING


async def test_a_key_is_not_kept_when_its_task_is_refused(
    backend: StoreFactory, store: Store
) -> None:
    existing = await store.submit(task())
    with pytest.raises(backend.duplicate_error):
        await store.submit_with_key(existing, key("dup", target_id=existing.id))
    assert await store.find_key("ci", "dup", 1001.0) is None


async def test_keys_are_per_principal(store: Store) -> None:
    mine, theirs = task(), task()
    await store.submit_with_key(mine, key(target_id=mine.id))
    other = IdempotencyRecord("someone", "k", "fp", theirs.id, 1000.0, 1060.0)
    returned = await store.submit_with_key(theirs, other)
    assert isinstance(returned, TaskRecord)


# -- submit_many_with_key -------------------------------------------------------------------------
async def test_submit_many_with_key_stores_the_batch_and_its_ids_with_the_key(store: Store) -> None:
    batch = [task(), task(), task()]
    returned = await store.submit_many_with_key(batch, key(target_id=""), claim(limit=1))
    assert isinstance(returned, list)
    assert [r.id for r in returned] == [t.id for t in batch]
    assert [r.status for r in returned] == [Status.RUNNING, Status.QUEUED, Status.QUEUED]
    found = await store.find_key("ci", "k", 1001.0)
    assert found is not None and batch_ids(found.target_id) == [t.id for t in batch]


async def test_a_repeated_batch_key_returns_its_record_and_writes_nothing(store: Store) -> None:
    first = [task(), task()]
    await store.submit_many_with_key(first, key(target_id=""))
    second = [task(), task()]
    returned = await store.submit_many_with_key(second, key(target_id="", at=1030.0))
    assert isinstance(returned, IdempotencyRecord)
    assert batch_ids(returned.target_id) == [t.id for t in first]
    assert [await store.get(t.id) for t in second] == [None, None]


async def test_a_batch_key_is_not_kept_when_its_batch_is_refused(
    backend: StoreFactory, store: Store
) -> None:
    existing = await store.submit(task())
    with pytest.raises(backend.duplicate_error):
        await store.submit_many_with_key([task(), existing], key("dup", target_id=""))
    assert await store.find_key("ci", "dup", 1001.0) is None


async def test_racing_batches_with_one_key_create_one_batch(store: Store) -> None:
    batches = [[task(), task()] for _ in range(6)]
    results = await asyncio.gather(
        *(store.submit_many_with_key(b, key(target_id="")) for b in batches)
    )
    created = [r for r in results if isinstance(r, list)]
    assert len(created) == 1
    winner = [t.id for t in created[0]]
    for r in results:
        if isinstance(r, IdempotencyRecord):
            assert batch_ids(r.target_id) == winner
    present = [t.id for b in batches for t in b if await store.get(t.id) is not None]
    assert present == winner


# -- bulk insert ----------------------------------------------------------------------------------
async def test_bulk_insert_outside_group_commit_keeps_rows_as_given(store: Store) -> None:
    store.insert_many_now(task(worker="Bulk") for _ in range(500))
    done = dataclasses.replace(
        task(worker="Bulk"), status=Status.COMPLETED, started_at=1.0, finished_at=2.0
    )
    store.insert_many_now([done])
    stats = await store.worker_stats("Bulk")
    assert nonzero(stats.by_status) == {"Queued": 500, "Completed": 1}
    got = await stored(store, done.id)
    assert (got.status, got.finished_at) == (Status.COMPLETED, 2.0)


async def test_the_key_names_the_task_it_was_stored_with(store: Store) -> None:
    given = task()
    await store.submit_with_key(given, key(target_id=""))
    found = await store.find_key("ci", "k", 1001.0)
    assert found is not None and found.target_id == given.id


async def test_a_config_that_is_not_json_fails_its_caller_and_writes_nothing(
    store: Store,
) -> None:
    good, bad = task(), task(config={"when": object()})
    with pytest.raises(TypeError):
        await store.submit_many([good, bad])
    assert await store.get(good.id) is None and await store.get(bad.id) is None
    later = await store.submit(task())  # the store goes on
    assert (await stored(store, later.id)).status is Status.QUEUED
