"""The tables beside tasks: API tokens, the audit log, idempotency keys, callbacks, schedules."""

from __future__ import annotations

import asyncio

from tasky.ids import new_id
from tasky.store import Store, TaskRecord
from tasky.store.records import CallbackAttempt
from tests.store_contract.records import (
    audit_entry,
    callback,
    key,
    nonzero,
    schedule,
    task,
    token_record,
)


# -- API tokens -----------------------------------------------------------------------------------
async def test_tokens_create_find_list_touch_revoke(store: Store) -> None:
    assert await store.count_tokens() == 0
    assert await store.create_token(token_record("ci", "h1", workers=["sleeper"], expires_at=9e9))
    assert await store.create_token(token_record("admin", "h2", role="admin"))
    # A taken name (or hash) writes nothing and says so.
    assert not await store.create_token(token_record("ci", "h3"))
    assert not await store.create_token(token_record("other", "h1"))
    found = await store.token_by_hash("h1")
    assert found is not None
    assert (found.name, found.role, found.workers, found.expires_at) == (
        "ci",
        "operator",
        ["sleeper"],
        9e9,
    )
    assert await store.token_by_hash("h3") is None
    await store.touch_token("ci", 1234.5)
    listed = await store.list_tokens()
    assert [(t.name, t.last_used_at) for t in listed] == [("admin", None), ("ci", 1234.5)]
    assert await store.count_tokens() == 2
    assert await store.revoke_token("ci")
    assert not await store.revoke_token("ci")
    assert await store.token_by_hash("h1") is None and await store.count_tokens() == 1


# -- the audit log --------------------------------------------------------------------------------
async def test_audit_pages_and_prunes_oldest_first(store: Store) -> None:
    await store.record_audit([audit_entry(float(i), target=f"t{i}") for i in range(10)])
    page = await store.list_audit(limit=4)
    assert [e.target for e in page.entries] == ["t0", "t1", "t2", "t3"]
    assert page.next_cursor is not None
    rest = await store.list_audit(limit=100, cursor=page.next_cursor)
    assert [e.target for e in rest.entries] == [f"t{i}" for i in range(4, 10)]
    assert rest.next_cursor is None
    newest = await store.list_audit(limit=1, descending=True)
    assert newest.entries[0].target == "t9" and newest.entries[0].status == 201
    # Entries before t=7 go, in batches of at most 3.
    assert await store.prune_audit(7.0, 3) == 3
    assert await store.prune_audit(7.0, 3) == 3
    assert await store.prune_audit(7.0, 3) == 1
    assert await store.prune_audit(7.0, 3) == 0
    left = await store.list_audit()
    assert [e.target for e in left.entries] == ["t7", "t8", "t9"]


# -- idempotency keys -----------------------------------------------------------------------------
async def test_find_key_sees_only_unexpired_keys(store: Store) -> None:
    t = task()
    await store.submit_with_key(t, key(target_id=t.id, at=1000.0))
    assert await store.find_key("ci", "k", 1059.0) == key(target_id=t.id, at=1000.0)
    assert await store.find_key("ci", "k", 1060.0) is None  # it counted until 1060
    assert await store.find_key("someone else", "k", 1001.0) is None


async def test_concurrent_submits_with_one_key_create_one_task(store: Store) -> None:
    tasks = [task(worker="Burst") for _ in range(20)]
    outcomes = await asyncio.gather(*(store.submit_with_key(t, key(target_id=t.id)) for t in tasks))
    winners = [o for o in outcomes if isinstance(o, TaskRecord)]
    assert len(winners) == 1
    assert {o.target_id for o in outcomes if not isinstance(o, TaskRecord)} == {winners[0].id}
    assert nonzero((await store.worker_stats("Burst")).by_status) == {"Queued": 1}


async def test_prune_keys_deletes_expired_ones_in_batches(store: Store) -> None:
    for n in range(5):
        await store.submit_with_key(task(), key(f"old{n}", at=1000.0 + n))  # expire 1060..1064
    await store.submit_with_key(task(), key("new", at=2000.0))
    assert await store.prune_keys(1063.5, 2) == 2  # the oldest first, at most 2
    assert await store.find_key("ci", "old0", 0.0) is None
    assert await store.find_key("ci", "old2", 0.0) is not None
    assert await store.prune_keys(1063.5, 100) == 2  # old2, old3; old4 expires at 1064
    assert await store.prune_keys(1063.5, 100) == 0
    assert await store.find_key("ci", "old4", 0.0) is not None
    assert await store.find_key("ci", "new", 0.0) is not None


# -- callbacks ------------------------------------------------------------------------------------
async def test_callbacks_wait_arm_attempt_and_finish(store: Store) -> None:
    task_id = new_id()
    await store.add_callback(callback(task_id))
    assert await store.waiting_callbacks() == [("task", task_id)]
    assert await store.due_callbacks(5000.0, 10) == []  # its task has not finished
    assert await store.arm_callback("task", task_id, 2000.0)
    assert not await store.arm_callback("task", task_id, 2500.0)  # armed once only
    assert not await store.arm_callback("task", new_id(), 2000.0)  # none waits for that one
    assert await store.waiting_callbacks() == []
    assert await store.due_callbacks(1999.0, 10) == []
    [due] = await store.due_callbacks(2000.0, 10)
    assert (due.url, due.next_at, due.state, due.attempts) == ("http://h/cb", 2000.0, "pending", [])
    await store.record_callback_attempt(
        "task", task_id, CallbackAttempt(2000.0, 500), "pending", 2010.0
    )
    assert await store.due_callbacks(2005.0, 10) == []
    assert len(await store.due_callbacks(2010.0, 10)) == 1
    await store.record_callback_attempt(
        "task", task_id, CallbackAttempt(2010.0, error="refused"), "pending", 2020.0
    )
    await store.record_callback_attempt(
        "task", task_id, CallbackAttempt(2020.0, 200), "delivered", None
    )
    assert await store.due_callbacks(9999.0, 10) == []
    found = await store.get_callback("task", task_id)
    assert found is not None and found.state == "delivered" and found.next_at is None
    assert [(a.at, a.status_code, a.error) for a in found.attempts] == [
        (2000.0, 500, None),
        (2010.0, None, "refused"),
        (2020.0, 200, None),
    ]
    assert await store.get_callback("chain", task_id) is None  # kinds are separate


async def test_callbacks_due_soonest_first_limited_and_dropped(store: Store) -> None:
    ids = [new_id() for _ in range(3)]
    for n, target in enumerate(ids):
        await store.add_callback(callback(target, kind="chain", url=f"http://h/{n}"))
        await store.arm_callback("chain", target, 30.0 - n)
    assert [c.target_id for c in await store.due_callbacks(100.0, 2)] == [ids[2], ids[1]]
    await store.drop_callback("chain", ids[2])
    assert await store.get_callback("chain", ids[2]) is None
    assert [c.target_id for c in await store.due_callbacks(100.0, 10)] == [ids[1], ids[0]]


async def test_a_claimed_callback_is_not_due_again_until_its_lease_ends(store: Store) -> None:
    ids = [new_id() for _ in range(3)]
    for n, target in enumerate(ids):
        await store.add_callback(callback(target))
        await store.arm_callback("task", target, 30.0 - n)
    taken = await store.claim_callbacks(100.0, 2, 150.0)
    assert [(c.target_id, c.next_at, c.state) for c in taken] == [
        (ids[2], 28.0, "pending"),
        (ids[1], 29.0, "pending"),
    ]
    assert [c.target_id for c in await store.claim_callbacks(100.0, 10, 150.0)] == [ids[0]]
    assert await store.claim_callbacks(149.0, 10, 300.0) == []  # every lease still runs
    # One attempt recorded: its own next time holds; the others come back when leases end.
    await store.record_callback_attempt(
        "task", ids[2], CallbackAttempt(101.0, 200), "delivered", None
    )
    again = await store.claim_callbacks(150.0, 10, 300.0)
    assert sorted(c.target_id for c in again) == sorted([ids[0], ids[1]])


async def test_callbacks_claimed_at_once_by_two_nodes_are_each_taken_once(store: Store) -> None:
    ids = [new_id() for _ in range(20)]
    for n, target in enumerate(ids):
        await store.add_callback(callback(target))
        await store.arm_callback("task", target, 10.0 + n)
    claims = await asyncio.gather(*(store.claim_callbacks(100.0, 7, 500.0) for _ in range(4)))
    taken = [c.target_id for claim in claims for c in claim]
    assert sorted(taken) == sorted(ids)


# -- schedules ------------------------------------------------------------------------------------
async def test_schedule_create_get_list_delete(store: Store) -> None:
    assert await store.create_schedule(schedule("b", config={"s": "é"}, cron="@daily"))
    assert await store.create_schedule(schedule("a", chain="backup", worker=None))
    assert not await store.create_schedule(schedule("a", interval=5.0))  # the name is taken
    got = await store.get_schedule("b")
    assert got is not None
    assert (got.config, got.cron, got.next_run, got.paused, got.source) == (
        {"s": "é"},
        "@daily",
        2000.0,
        False,
        "api",
    )
    a = await store.get_schedule("a")
    assert a is not None and (a.chain, a.worker, a.interval) == ("backup", None, 60.0)
    assert [s.name for s in await store.list_schedules()] == ["a", "b"]
    assert await store.delete_schedule("a")
    assert not await store.delete_schedule("a")
    assert await store.get_schedule("a") is None


async def test_two_claims_of_one_due_time_have_one_winner(store: Store) -> None:
    await store.create_schedule(schedule(next_run=2000.0))
    ids = [new_id(), new_id()]
    # Both claims in flight at once: the compare-and-set decides.
    won = await asyncio.gather(
        *(store.claim_schedule_run("nightly", 2000.0, 2060.0, i, 2000.5) for i in ids)
    )
    assert sorted(won) == [False, True]
    got = await store.get_schedule("nightly")
    assert got is not None
    assert got.next_run == 2060.0 and got.last_run_at == 2000.5
    assert got.last_run_id == ids[won.index(True)]
    # A late claim of the same due time (a restarted or second server) loses too.
    assert not await store.claim_schedule_run("nightly", 2000.0, 2060.0, new_id(), 2001.0)
    assert await store.claim_schedule_run("nightly", 2060.0, 2120.0, None, 2200.0)  # skipped
    got = await store.get_schedule("nightly")
    assert got is not None and got.next_run == 2120.0 and got.last_run_id == ids[won.index(True)]


async def test_paused_schedule_cannot_be_claimed_and_resumes_at_given_time(store: Store) -> None:
    await store.create_schedule(schedule(next_run=2000.0))
    assert await store.set_schedule_paused("nightly", True, 9999.0)
    got = await store.get_schedule("nightly")
    assert got is not None and got.paused and got.next_run == 2000.0  # pausing keeps it
    assert not await store.claim_schedule_run("nightly", 2000.0, 2060.0, new_id(), 2000.0)
    assert await store.set_schedule_paused("nightly", False, 5000.0)
    got = await store.get_schedule("nightly")
    assert got is not None and not got.paused and got.next_run == 5000.0
    assert not await store.set_schedule_paused("missing", True, 0.0)


async def test_record_schedule_run_and_error(store: Store) -> None:
    await store.create_schedule(schedule())
    run = new_id()
    await store.record_schedule_run("nightly", run, 1500.0, None)
    await store.record_schedule_run("nightly", None, 1600.0, "queue full")
    got = await store.get_schedule("nightly")
    assert got is not None
    assert (got.last_run_id, got.last_run_at, got.last_error) == (run, 1500.0, "queue full")
    assert got.next_run == 2000.0  # a run outside the timetable leaves it as it is


async def test_save_schedule_keeps_state_and_moves_next_run_only_on_new_timing(
    store: Store,
) -> None:
    await store.save_schedule(schedule(source="tasky.toml", next_run=2000.0))
    await store.record_schedule_run("nightly", "r1", 1900.0, None)
    await store.set_schedule_paused("nightly", True, 0.0)
    await store.save_schedule(schedule(source="tasky.toml", config={"n": 2}, next_run=3000.0))
    got = await store.get_schedule("nightly")
    assert got is not None
    assert (got.config, got.next_run, got.paused, got.last_run_id) == ({"n": 2}, 2000.0, True, "r1")
    await store.save_schedule(schedule(source="tasky.toml", interval=30.0, next_run=3000.0))
    got = await store.get_schedule("nightly")
    assert got is not None and got.next_run == 3000.0 and got.interval == 30.0
