"""What an acknowledged write leaves for the next store opened on the same data (stores that
are ``durable``), and the lock that keeps a second server off it (``exclusive_lock``)."""

from __future__ import annotations

import pytest

from tasky.states import Status
from tasky.store import StoreLocked
from tasky.store.chain_records import DefinitionRecord
from tasky.store.records import CallbackAttempt, ChildRecord
from tests.store_contract.backends import StoreFactory
from tests.store_contract.records import (
    OWNER,
    callback,
    chain,
    claim,
    key,
    outcome,
    running,
    schedule,
    steps,
    stored,
    task,
    token_record,
)


async def test_tasks_and_their_history_survive_a_reopen(durable_backend: StoreFactory) -> None:
    first = await durable_backend.open()
    done = await running(first)
    assert await first.finish(done.id, OWNER, 1, outcome(result={"r": 1}))
    await first.append_logs([(done.id, 1.0, "a line")], 10)
    held = await running(first, started_at=1003.0)
    queued = await first.submit(task())
    await first.record_child(ChildRecord(held.id, 101, 5000, "boot-1", "mark"))
    stats = await first.worker_stats("W")
    await first.close()

    again = await durable_backend.open()
    try:
        got = await stored(again, done.id)
        assert (got.status, got.result) == (Status.COMPLETED, {"r": 1})
        assert [ln.line for ln in await again.logs(done.id)] == ["a line"]
        assert [a.status for a in await again.attempts(done.id)] == [Status.COMPLETED]
        assert [t.id for t in await again.held_tasks()] == [held.id]
        assert [c.task_id for c in await again.children()] == [held.id]
        assert [t.id for t in await again.claim("W", claim(), 1010.0)] == [queued.id]
        assert (await again.worker_stats("W")).finished == stats.finished
    finally:
        await again.close()


async def test_tokens_keys_callbacks_and_schedules_survive_a_reopen(
    durable_backend: StoreFactory,
) -> None:
    first = await durable_backend.open()
    await first.create_token(token_record("ci", "h1"))
    keyed = task()
    await first.submit_with_key(keyed, key(target_id=keyed.id))
    waiting, armed = task().id, task().id
    await first.add_callback(callback(waiting))
    await first.add_callback(callback(armed))
    await first.arm_callback("task", armed, 5.0)
    await first.record_callback_attempt("task", armed, CallbackAttempt(5.0, 503), "pending", 9.0)
    await first.create_schedule(schedule())
    await first.close()

    again = await durable_backend.open()
    try:
        assert [t.name for t in await again.list_tokens()] == ["ci"]
        found = await again.submit_with_key(task(), key(at=1001.0))
        assert found == key(target_id=keyed.id)
        assert await again.waiting_callbacks() == [("task", waiting)]
        [due] = await again.due_callbacks(10.0, 10)
        assert (due.target_id, due.next_at) == (armed, 9.0)
        got = await again.get_callback("task", armed)
        assert got is not None and [a.status_code for a in got.attempts] == [503]
        assert [s.name for s in await again.list_schedules()] == ["nightly"]
    finally:
        await again.close()


async def test_chains_survive_a_reopen(durable_backend: StoreFactory) -> None:
    first = await durable_backend.open()
    record = chain()
    await first.chains.create(record, steps(record.id, None))
    await first.chains.put_definition(DefinitionRecord("d", {"steps": []}, 1.0, 1.0))
    await first.close()

    again = await durable_backend.open()
    try:
        assert (await again.chains.ids_with_status([Status.RUNNING])) == [record.id]
        assert [s.name for s in await again.chains.steps(record.id)] == ["s0"]
        assert [d.name for d in await again.chains.list_definitions()] == ["d"]
    finally:
        await again.close()


async def test_a_second_store_on_the_same_data_is_refused(locking_backend: StoreFactory) -> None:
    first = await locking_backend.open()
    try:
        with pytest.raises(StoreLocked, match="another Tasky server"):
            await locking_backend.open()
    finally:
        await first.close()
    again = await locking_backend.open()  # free once the first is closed
    await again.close()
