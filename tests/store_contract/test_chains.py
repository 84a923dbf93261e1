"""The chain store every store exposes as ``store.chains``: chains and their steps, statuses,
named definitions, idempotency keys, and pruning with their tasks."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from tasky.ids import new_id
from tasky.states import Status
from tasky.store import Store
from tasky.store.chain_records import DefinitionRecord, StepRecord
from tests.store_contract.backends import StoreFactory
from tests.store_contract.records import chain, finished, key, running, steps, stored, task


async def test_a_chain_and_its_steps_round_trip(store: Store) -> None:
    record = chain(
        name="nightly",
        definition="backup",
        spec={"steps": [{"name": "s0"}], "é": True},
        parameters={"day": 1},
    )
    made = steps(record.id, "a" * 32, None)
    made[0].history = ["b" * 32]
    await store.chains.create(record, made)
    got = await store.chains.get(record.id)
    assert got is not None and got.seq > 0
    assert got == dataclasses.replace(record, seq=got.seq)
    assert await store.chains.steps(record.id) == made
    assert await store.chains.get(new_id()) is None
    assert await store.chains.steps(new_id()) == []


async def test_steps_come_in_definition_order(store: Store) -> None:
    record = chain()
    made = [StepRecord(record.id, name, position) for name, position in (("z", 0), ("a", 1))]
    await store.chains.create(record, list(reversed(made)))
    assert [s.name for s in await store.chains.steps(record.id)] == ["z", "a"]


async def test_a_duplicate_chain_id_raises_and_writes_nothing(
    backend: StoreFactory, store: Store
) -> None:
    record = chain()
    await store.chains.create(record, steps(record.id, None))
    again = dataclasses.replace(chain(), id=record.id)
    with pytest.raises(backend.duplicate_error):
        await store.chains.create(again, [StepRecord(record.id, "extra", 5)])
    assert [s.name for s in await store.chains.steps(record.id)] == ["s0"]


async def test_list_chains_by_status_in_pages(store: Store) -> None:
    running_chains = [chain() for _ in range(3)]
    done = chain(Status.COMPLETED)
    for record in [*running_chains, done]:
        await store.chains.create(record, [])
    page = await store.chains.list_chains(status=Status.RUNNING, limit=2)
    assert [c.id for c in page.chains] == [c.id for c in running_chains[:2]]
    assert page.next_cursor is not None
    rest = await store.chains.list_chains(status=Status.RUNNING, cursor=page.next_cursor)
    assert [c.id for c in rest.chains] == [running_chains[2].id] and rest.next_cursor is None
    newest = await store.chains.list_chains(descending=True, limit=1)
    assert [c.id for c in newest.chains] == [done.id]
    ids = await store.chains.ids_with_status([Status.RUNNING, Status.COMPLETED])
    assert ids == [c.id for c in [*running_chains, done]]
    assert await store.chains.ids_with_status([Status.PAUSED]) == []


async def test_save_steps_writes_each_step_state(store: Store) -> None:
    record = chain()
    made = steps(record.id, None, None)
    await store.chains.create(record, made)
    made[0].state, made[0].task_id, made[0].decided_at = "submitted", "a" * 32, 1001.0
    made[1].state, made[1].error, made[1].rerun_attempt = "failed", "no value", 2
    made[1].history = ["c" * 32]
    await store.chains.save_steps(made)
    await store.chains.save_steps([])
    assert await store.chains.steps(record.id) == made


async def test_set_status_is_a_compare_and_set_with_fields_and_steps(store: Store) -> None:
    record = chain()
    made = steps(record.id, None)
    await store.chains.create(record, made)
    made[0].state = "canceled"
    assert not await store.chains.set_status(
        record.id, [Status.PAUSED], Status.CANCELED, fields={"error": "x"}, steps=made
    )
    unchanged = await store.chains.get(record.id)
    assert unchanged is not None and (unchanged.status, unchanged.error) == (Status.RUNNING, None)
    assert (await store.chains.steps(record.id))[0].state == "pending"
    fields = {"finished_at": 1500.0, "error": "stopped", "result": {"r": [1]}, "restarts": 1}
    assert await store.chains.set_status(
        record.id, [Status.RUNNING, Status.PAUSED], Status.CANCELED, fields=fields, steps=made
    )
    got = await store.chains.get(record.id)
    assert got is not None
    assert (got.status, got.finished_at, got.error, got.result, got.restarts) == (
        Status.CANCELED,
        1500.0,
        "stopped",
        {"r": [1]},
        1,
    )
    assert (await store.chains.steps(record.id))[0].state == "canceled"
    assert not await store.chains.set_status(new_id(), [Status.RUNNING], Status.FAILED)


async def test_set_status_refuses_other_fields(store: Store) -> None:
    record = chain()
    await store.chains.create(record, [])
    with pytest.raises(ValueError, match="not settable"):
        await store.chains.set_status(record.id, [Status.RUNNING], Status.FAILED, fields={"id": 1})
    got = await store.chains.get(record.id)
    assert got is not None and got.status is Status.RUNNING


async def test_two_racing_status_changes_have_one_winner(store: Store) -> None:
    record = chain()
    await store.chains.create(record, [])
    won = await asyncio.gather(
        store.chains.set_status(record.id, [Status.RUNNING], Status.PAUSED),
        store.chains.set_status(record.id, [Status.RUNNING], Status.CANCELED),
    )
    assert sorted(won) == [False, True]


async def test_active_tasks_of_chains_in_some_statuses(store: Store) -> None:
    canceled, going = chain(Status.CANCELED), chain()
    for record in (canceled, going):
        await store.chains.create(record, [])
    started = await running(store, chain_id=canceled.id)
    await finished(store, chain_id=canceled.id)
    queued = await store.submit(task(chain_id=canceled.id))
    await store.submit(task(chain_id=going.id))
    await store.submit(task(chain_id=new_id()))  # its chain is not stored
    found = await store.chains.active_tasks_of([Status.CANCELED])
    assert found == [(canceled.id, started.id), (canceled.id, queued.id)]
    assert len(await store.chains.active_tasks_of([Status.RUNNING, Status.CANCELED])) == 3


# -- named definitions ----------------------------------------------------------------------------
async def test_definitions_put_get_list_delete(store: Store) -> None:
    first = DefinitionRecord("b", {"steps": [{"name": "x"}]}, 1000.0, 1000.0)
    assert await store.chains.put_definition(first)
    assert await store.chains.put_definition(DefinitionRecord("a", {"steps": []}, 1001.0, 1001.0))
    replaced = DefinitionRecord("b", {"steps": [{"name": "y"}]}, 1500.0, 1500.0)
    assert not await store.chains.put_definition(replaced)  # not new
    got = await store.chains.get_definition("b")
    assert got is not None
    assert (got.spec, got.created_at, got.updated_at) == (
        {"steps": [{"name": "y"}]},
        1000.0,
        1500.0,
    )
    assert [d.name for d in await store.chains.list_definitions()] == ["a", "b"]
    assert await store.chains.delete_definition("a")
    assert not await store.chains.delete_definition("a")
    assert await store.chains.get_definition("a") is None


# -- idempotency keys -----------------------------------------------------------------------------
async def test_a_keyed_chain_is_created_once(backend: StoreFactory, store: Store) -> None:
    first = chain()
    keyed = key(target_id=first.id)
    assert await store.chains.create_with_key(first, steps(first.id, None), keyed) is None
    second = chain()
    found = await store.chains.create_with_key(second, steps(second.id, None), key(at=1001.0))
    assert found == keyed
    assert await store.chains.get(second.id) is None and await store.chains.steps(second.id) == []
    # Chain and key in one write: a chain that cannot be created leaves no key.
    with pytest.raises(backend.duplicate_error):
        await store.chains.create_with_key(first, [], key("dup"))
    assert await store.find_key("ci", "dup", 0.0) is None


# -- pruning --------------------------------------------------------------------------------------
async def test_prune_finished_chains_with_steps_and_tasks(store: Store) -> None:
    done_chain, running_chain = chain(Status.COMPLETED), chain()
    done_tasks = [await finished(store, chain_id=done_chain.id) for _ in range(2)]
    live_done = await finished(store, chain_id=running_chain.id)
    live = await store.submit(task(chain_id=running_chain.id))
    for t in [*done_tasks, live_done, live]:
        await store.append_logs([(t.id, 1.0, "line")], 10)
    await store.chains.create(done_chain, steps(done_chain.id, *(t.id for t in done_tasks)))
    await store.chains.create(running_chain, steps(running_chain.id, live_done.id, live.id))
    # A finished chain and a running one whose finished_at is old (a restarted chain keeps its
    # old value until it ends again): only the finished one may go.
    for record in (done_chain, running_chain):
        assert await store.chains.set_status(
            record.id, [record.status], record.status, fields={"finished_at": 2000.0}
        )

    assert await store.chains.count_prunable(1999.0) == 0
    assert await store.chains.count_prunable(5000.0) == 1
    # Chain tasks are not the task store's to prune.
    assert await store.prune_finished(5000.0, None, 100) == 0
    assert await store.chains.prune_finished(5000.0, 10) == 1
    assert await store.chains.get(done_chain.id) is None
    assert await store.chains.steps(done_chain.id) == []
    for t in done_tasks:
        assert await store.get(t.id) is None
        assert await store.logs(t.id) == [] and await store.attempts(t.id) == []
    assert await store.chains.get(running_chain.id) is not None
    assert len(await store.chains.steps(running_chain.id)) == 2
    for t in (live_done, live):
        assert await stored(store, t.id) is not None
    assert await store.chains.prune_finished(5000.0, 10) == 0
    assert (await store.worker_stats("W")).by_status["Completed"] == 3


async def test_a_finished_chain_with_an_unfinished_task_is_kept(store: Store) -> None:
    record = chain(Status.FAILED)
    straggler = await store.submit(task(chain_id=record.id))
    await store.chains.create(record, steps(record.id, straggler.id))
    assert await store.chains.set_status(
        record.id, [Status.FAILED], Status.FAILED, fields={"finished_at": 2000.0}
    )
    assert await store.chains.count_prunable(5000.0) == 0
    assert await store.chains.prune_finished(5000.0, 10) == 0
    assert await store.cancel(straggler.id, 2001.0)
    assert await store.chains.prune_finished(5000.0, 10) == 1


async def test_chain_pruning_keeps_the_limit_oldest_first(store: Store) -> None:
    made = [chain(Status.COMPLETED) for _ in range(3)]
    for n, record in enumerate(made):
        await store.chains.create(record, [])
        await store.chains.set_status(
            record.id, [Status.COMPLETED], Status.COMPLETED, fields={"finished_at": 3000.0 - n}
        )
    assert await store.chains.prune_finished(5000.0, 2) == 2
    assert [c.id for c in (await store.chains.list_chains()).chains] == [made[0].id]
