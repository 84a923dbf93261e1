"""The Store contract, written once and run against every store implementation."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tasky.ids import new_id
from tasky.states import Status
from tasky.store import (
    AuditRecord,
    ScheduleRecord,
    SqliteStore,
    Store,
    StoreLocked,
    TaskRecord,
    TokenRecord,
)
from tasky.store.chain_records import ChainRecord, StepRecord
from tasky.store.records import CallbackAttempt, CallbackRecord, ChildRecord, IdempotencyRecord

StoreFactory = Callable[[Path], Store]

FACTORIES: dict[str, StoreFactory] = {
    "sqlite": lambda path: SqliteStore(path / "tasky.db"),
}


@pytest.fixture(params=sorted(FACTORIES))
def make_store(request: pytest.FixtureRequest) -> StoreFactory:
    factory: StoreFactory = FACTORIES[request.param]
    return factory


@pytest.fixture
async def store(make_store: StoreFactory, tmp_path: Path) -> AsyncIterator[Store]:
    s = make_store(tmp_path)
    await s.open()
    yield s
    await s.close()


def task(worker: str = "W", status: Status = Status.QUEUED, **kw: object) -> TaskRecord:
    fields: dict[str, object] = {"config": {"n": 1}, "created_at": 1000.0, "queued_at": 1000.0}
    fields.update(kw)
    return TaskRecord(id=new_id(), worker=worker, status=status, **fields)  # type: ignore[arg-type]


async def test_insert_and_get_round_trip(store: Store) -> None:
    t = task(config={"nested": {"a": [1, 2]}, "s": "é"}, retries=2, timeout=1.5, chain_id="c1")
    await store.insert(t)
    got = await store.get(t.id)
    assert got is not None
    assert (got.worker, got.status, got.config, got.retries, got.timeout, got.chain_id) == (
        "W",
        Status.QUEUED,
        {"nested": {"a": [1, 2]}, "s": "é"},
        2,
        1.5,
        "c1",
    )
    assert got.seq > 0 and got.attempt == 1
    assert await store.get(new_id()) is None


async def test_concurrent_inserts_all_commit(store: Store) -> None:
    tasks = [task() for _ in range(2000)]
    await asyncio.gather(*(store.insert(t) for t in tasks))
    for t in tasks[::97]:
        assert await store.get(t.id) is not None
    page = await store.list_tasks(limit=1000)
    assert len(page.tasks) == 1000 and page.next_cursor is not None


async def test_transition_is_compare_and_set(store: Store) -> None:
    t = task()
    await store.insert(t)
    assert not await store.transition(t.id, [Status.RUNNING], Status.COMPLETED)
    assert await store.transition(
        t.id, [Status.QUEUED], Status.RUNNING, fields={"owner": "node-a", "started_at": 1001.0}
    )
    assert not await store.transition(t.id, [Status.RUNNING], Status.COMPLETED, owner="node-b")
    assert not await store.transition(
        t.id, [Status.RUNNING], Status.COMPLETED, owner="node-a", attempt=2
    )
    assert await store.transition(
        t.id,
        [Status.RUNNING],
        Status.COMPLETED,
        owner="node-a",
        attempt=1,
        fields={"finished_at": 1003.0, "result": {"ok": 1}},
    )
    got = await store.get(t.id)
    assert got is not None and got.status is Status.COMPLETED and got.result == {"ok": 1}
    with pytest.raises(ValueError):
        await store.transition(t.id, [Status.COMPLETED], Status.QUEUED, fields={"worker": "x"})


async def test_finish_records_attempt_and_statistics(store: Store) -> None:
    t = task(worker="Stats")
    await store.insert(t)
    await store.transition(t.id, [Status.QUEUED], Status.RUNNING, fields={"started_at": 1002.0})
    await store.transition(
        t.id,
        [Status.RUNNING],
        Status.QUEUED,
        record_as=Status.FAILED,
        fields={"attempt": 2, "error": "first try failed", "finished_at": 1003.0},
    )
    await store.transition(t.id, [Status.QUEUED], Status.RUNNING, fields={"started_at": 1004.0})
    await store.transition(
        t.id, [Status.RUNNING], Status.COMPLETED, fields={"finished_at": 1006.0, "result": {"r": 1}}
    )
    attempts = await store.attempts(t.id)
    assert [(a.attempt, a.status) for a in attempts] == [(1, Status.FAILED), (2, Status.COMPLETED)]
    assert attempts[0].error == "first try failed" and attempts[1].result == {"r": 1}
    stats = await store.worker_stats("Stats")
    assert stats.finished == 2
    assert stats.run_time_sum == pytest.approx(1.0 + 2.0)
    assert stats.by_status == {"Queued": 0, "Running": 0, "Completed": 1}
    assert sum(stats.run_time_hist.values()) == 2


async def test_status_counts_follow_every_change(store: Store) -> None:
    tasks = [task(worker="Count") for _ in range(5)]
    for t in tasks:
        await store.insert(t)
    await store.transition(tasks[0].id, [Status.QUEUED], Status.PAUSED)
    await store.transition(tasks[1].id, [Status.QUEUED], Status.CANCELED)
    stats = await store.worker_stats("Count")
    assert {k: v for k, v in stats.by_status.items() if v} == {
        "Queued": 3,
        "Paused": 1,
        "Canceled": 1,
    }


async def test_list_filters_order_and_cursor(store: Store) -> None:
    a = [task(worker="A") for _ in range(5)]
    b = [task(worker="B", status=Status.RUNNING) for _ in range(3)]
    for t in a + b:
        await store.insert(t)
    page = await store.list_tasks(worker="A", limit=2)
    ids = [t.id for t in page.tasks]
    while page.next_cursor is not None:
        page = await store.list_tasks(worker="A", limit=2, cursor=page.next_cursor)
        ids += [t.id for t in page.tasks]
    assert ids == [t.id for t in a]
    running = await store.list_tasks(status=Status.RUNNING)
    assert [t.id for t in running.tasks] == [t.id for t in b]
    desc = await store.list_tasks(descending=True, limit=3)
    assert [t.id for t in desc.tasks] == [t.id for t in reversed(b)]
    both = await store.list_tasks(worker="B", status=Status.QUEUED)
    assert both.tasks == [] and both.next_cursor is None


async def test_logs_are_ordered_bounded_and_counted(store: Store) -> None:
    t = task()
    await store.insert(t)
    await store.append_logs([(t.id, 1.0, f"line {i}") for i in range(8)], max_lines=5)
    await store.append_logs([(t.id, 2.0, "last")], max_lines=5)
    lines = await store.logs(t.id)
    assert [ln.line for ln in lines] == ["line 4", "line 5", "line 6", "line 7", "last"]
    assert [ln.seq for ln in lines] == [5, 6, 7, 8, 9]
    assert [ln.line for ln in await store.logs(t.id, after=8)] == ["last"]
    got = await store.get(t.id)
    assert got is not None and got.logs_dropped == 4


async def test_progress_and_heartbeat(store: Store) -> None:
    t = task(status=Status.RUNNING, owner="me", lease_until=5.0)
    await store.insert(t)
    await store.set_progress([(t.id, 0.5, "half")])
    assert await store.heartbeat("me", [t.id], 99.0) == 1
    assert await store.heartbeat("other", [t.id], 100.0) == 0
    got = await store.get(t.id)
    assert got is not None
    assert (got.progress, got.progress_message, got.lease_until) == (0.5, "half", 99.0)


async def test_ids_with_status_for_recovery(store: Store) -> None:
    q = task(run_after=50.0)
    r = task(status=Status.RUNNING)
    done = task(status=Status.COMPLETED)
    for t in (q, r, done):
        await store.insert(t)
    rows = await store.ids_with_status([Status.QUEUED, Status.RUNNING])
    assert rows == [(q.id, "W", Status.QUEUED, 50.0), (r.id, "W", Status.RUNNING, None)]


async def test_data_survives_reopen(make_store: StoreFactory, tmp_path: Path) -> None:
    s = make_store(tmp_path)
    await s.open()
    t = task()
    await s.insert(t)
    await s.close()
    s2 = make_store(tmp_path)
    await s2.open()
    try:
        assert await s2.get(t.id) is not None
    finally:
        await s2.close()


async def test_bulk_insert_outside_group_commit(store: Store) -> None:
    store.insert_many_now(task(worker="Bulk") for _ in range(500))
    stats = await store.worker_stats("Bulk")
    assert stats.by_status["Queued"] == 500


async def test_sqlite_refuses_a_second_owner(tmp_path: Path) -> None:
    first = SqliteStore(tmp_path / "tasky.db")
    await first.open()
    try:
        with pytest.raises(StoreLocked, match="another Tasky server"):
            await SqliteStore(tmp_path / "tasky.db").open()
    finally:
        await first.close()


async def test_sqlite_writer_survives_a_failing_batch(tmp_path: Path) -> None:
    """A batch that fails (here: a duplicate id) fails its callers with an error, and the writer
    keeps serving later writes instead of leaving them hanging."""
    store = SqliteStore(tmp_path / "tasky.db")
    await store.open()
    try:
        first = task()
        await store.insert(first)
        # A duplicate in the same group commit as good inserts: only the duplicate fails.
        good = [task() for _ in range(5)]
        results = await asyncio.gather(
            store.insert(good[0]),
            store.insert(first),
            *(store.insert(t) for t in good[1:]),
            return_exceptions=True,
        )
        assert isinstance(results[1], Exception)
        assert [r for i, r in enumerate(results) if i != 1] == [None] * 5
        for t in good:
            assert await store.get(t.id) is not None
        later = task()
        await asyncio.wait_for(store.insert(later), 10)
        assert await store.get(later.id) is not None
    finally:
        await store.close()


async def test_children_are_remembered_until_forgotten(store: Store) -> None:
    a = ChildRecord("a" * 32, 101, 5000, "boot-1", "mark-a")
    b = ChildRecord("b" * 32, 102, 5001, "boot-1", "mark-b")
    await store.record_child(a)
    await store.record_child(b)
    # A task's next attempt starts a new child: it replaces the old record.
    a2 = ChildRecord("a" * 32, 201, 6000, "boot-1", "mark-a2")
    await store.record_child(a2)
    assert sorted(await store.children(), key=lambda c: c.task_id) == [a2, b]
    await store.forget_children([a.task_id])
    assert await store.children() == [b]
    await store.forget_children([b.task_id, "c" * 32])
    assert await store.children() == []


async def test_children_survive_a_reopen(make_store: StoreFactory, tmp_path: Path) -> None:
    child = ChildRecord("a" * 32, 101, 5000, "boot-1", "mark-a")
    first = make_store(tmp_path)
    await first.open()
    await first.record_child(child)
    await first.close()
    again = make_store(tmp_path)
    await again.open()
    try:
        assert await again.children() == [child]
    finally:
        await again.close()


# -- API tokens and the audit log -------------------------------------------------------------
def token_record(name: str, token_hash: str, **kw: object) -> TokenRecord:
    fields: dict[str, object] = {"role": "operator", "workers": None, "created_at": 1000.0}
    fields.update(kw)
    return TokenRecord(name=name, token_hash=token_hash, **fields)  # type: ignore[arg-type]


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


async def test_tokens_are_durable(make_store: StoreFactory, tmp_path: Path) -> None:
    first = make_store(tmp_path)
    await first.open()
    await first.create_token(token_record("ci", "h1"))
    await first.close()
    second = make_store(tmp_path)
    await second.open()
    try:
        assert [t.name for t in await second.list_tokens()] == ["ci"]
    finally:
        await second.close()


def audit_entry(at: float, target: str = "t") -> AuditRecord:
    return AuditRecord(
        at=at, token="ci", client="127.0.0.1", method="POST", route="/r", target=target, status=201
    )


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


async def test_oldest_queued_at_is_the_first_queued_task_of_the_worker(store: Store) -> None:
    assert await store.oldest_queued_at("W") is None
    first, second = task(queued_at=1000.0), task(queued_at=1001.0)
    others = [task(worker="X", queued_at=900.0), task(status=Status.RUNNING, queued_at=10.0)]
    for t in [first, second, *others]:
        await store.insert(t)
    assert await store.oldest_queued_at("W") == 1000.0
    assert await store.transition(first.id, [Status.QUEUED], Status.CANCELED)
    assert await store.oldest_queued_at("W") == 1001.0
    assert await store.oldest_queued_at("X") == 900.0
    assert await store.oldest_queued_at("nobody") is None


async def test_commit_stats_count_commits_and_the_writes_they_carry(store: Store) -> None:
    before = store.commit_stats()
    await asyncio.gather(*(store.insert(task()) for _ in range(20)))
    after = store.commit_stats()
    commits = after.seconds.count - before.seconds.count
    assert 1 <= commits <= 20
    assert after.group_size.count - before.group_size.count == commits
    assert after.group_size.total - before.group_size.total == 20
    assert after.seconds.total > before.seconds.total
    # A compare-and-set that changes nothing still rode in a commit.
    assert not await store.transition(new_id(), [Status.QUEUED], Status.RUNNING)
    assert store.commit_stats().group_size.total - after.group_size.total == 1


def key(
    name: str = "k1", principal: str = "ci", fingerprint: str = "f1", at: float = 1000.0
) -> IdempotencyRecord:
    return IdempotencyRecord(principal, name, fingerprint, new_id(), at, at + 60)


async def test_insert_with_key_answers_a_repeat_with_the_first_task(store: Store) -> None:
    first, again = task(), task()
    k = key(fingerprint="f1")
    assert await store.insert_with_key(first, dataclasses.replace(k, target_id=first.id)) is None
    # The same key again, whatever its request: nothing written, the first record returned.
    found = await store.insert_with_key(again, key(fingerprint="other", at=1010.0))
    assert found is not None
    assert (found.target_id, found.fingerprint) == (first.id, "f1")
    assert await store.get(first.id) is not None and await store.get(again.id) is None
    assert await store.find_key("ci", "k1", 1059.0) == dataclasses.replace(k, target_id=first.id)
    # Keys belong to their principal: another caller's same key is a different key.
    theirs = task()
    assert await store.insert_with_key(theirs, key(principal="other")) is None
    assert await store.get(theirs.id) is not None


async def test_an_expired_key_is_replaced(store: Store) -> None:
    first, later = task(), task()
    await store.insert_with_key(first, dataclasses.replace(key(), target_id=first.id))
    assert await store.find_key("ci", "k1", 1060.0) is None  # expires_at is 1060
    fresh = dataclasses.replace(key(at=1060.0, fingerprint="f2"), target_id=later.id)
    assert await store.insert_with_key(later, fresh) is None
    assert await store.get(later.id) is not None
    assert await store.find_key("ci", "k1", 1061.0) == fresh


async def test_key_and_task_commit_together(store: Store) -> None:
    """A task insert that fails leaves no key behind (one transaction for both)."""
    existing = task()
    await store.insert(existing)
    with pytest.raises(Exception, match="UNIQUE"):
        await store.insert_with_key(existing, key("dup"))
    assert await store.find_key("ci", "dup", 0.0) is None


async def test_concurrent_inserts_with_one_key_create_one_task(store: Store) -> None:
    tasks = [task(worker="Burst") for _ in range(20)]
    outcomes = await asyncio.gather(
        *(store.insert_with_key(t, dataclasses.replace(key(), target_id=t.id)) for t in tasks)
    )
    winners = [t for t, found in zip(tasks, outcomes, strict=True) if found is None]
    assert len(winners) == 1
    assert {found.target_id for found in outcomes if found is not None} == {winners[0].id}
    assert (await store.worker_stats("Burst")).by_status == {"Queued": 1}


async def test_keys_survive_reopen(make_store: StoreFactory, tmp_path: Path) -> None:
    first = make_store(tmp_path)
    await first.open()
    t = task()
    await first.insert_with_key(t, dataclasses.replace(key(), target_id=t.id))
    await first.close()
    second = make_store(tmp_path)
    await second.open()
    try:
        found = await second.insert_with_key(task(), key(at=1001.0))
        assert found is not None and found.target_id == t.id
    finally:
        await second.close()


async def test_prune_keys_deletes_expired_ones_in_batches(store: Store) -> None:
    for n in range(5):
        await store.insert_with_key(task(), key(f"old{n}", at=1000.0 + n))  # expire 1060..1064
    await store.insert_with_key(task(), key("new", at=2000.0))
    assert await store.prune_keys(1063.5, 2) == 2  # the oldest first, at most 2
    assert await store.find_key("ci", "old0", 0.0) is None
    assert await store.find_key("ci", "old2", 0.0) is not None
    assert await store.prune_keys(1063.5, 100) == 2  # old2, old3; old4 expires at 1064
    assert await store.prune_keys(1063.5, 100) == 0
    assert await store.find_key("ci", "old4", 0.0) is not None
    assert await store.find_key("ci", "new", 0.0) is not None


async def test_callbacks_wait_arm_attempt_and_finish(store: Store) -> None:
    task_id = new_id()
    await store.add_callback(CallbackRecord("task", task_id, "http://h/cb", 1000.0))
    assert await store.waiting_callbacks() == [("task", task_id)]
    assert await store.due_callbacks(5000.0, 10) == []  # its task has not finished
    assert await store.arm_callback("task", task_id, 2000.0)
    assert not await store.arm_callback("task", task_id, 2500.0)  # armed once only
    assert not await store.arm_callback("task", new_id(), 2000.0)  # none waits for that one
    assert await store.waiting_callbacks() == []
    assert await store.due_callbacks(1999.0, 10) == []
    due = await store.due_callbacks(2000.0, 10)
    assert [(c.kind, c.target_id, c.url, c.next_at) for c in due] == [
        ("task", task_id, "http://h/cb", 2000.0)
    ]
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
        await store.add_callback(CallbackRecord("chain", target, f"http://h/{n}", 1.0))
        await store.arm_callback("chain", target, 30.0 - n)
    assert [c.target_id for c in await store.due_callbacks(100.0, 2)] == [ids[2], ids[1]]
    await store.drop_callback("chain", ids[2])
    assert await store.get_callback("chain", ids[2]) is None
    assert [c.target_id for c in await store.due_callbacks(100.0, 10)] == [ids[1], ids[0]]


async def test_callbacks_survive_a_reopen(make_store: StoreFactory, tmp_path: Path) -> None:
    first = make_store(tmp_path)
    await first.open()
    waiting, armed = new_id(), new_id()
    await first.add_callback(CallbackRecord("task", waiting, "http://h/a", 1.0))
    await first.add_callback(CallbackRecord("task", armed, "http://h/b", 1.0))
    await first.arm_callback("task", armed, 5.0)
    await first.record_callback_attempt("task", armed, CallbackAttempt(5.0, 503), "pending", 9.0)
    await first.close()
    second = make_store(tmp_path)
    await second.open()
    try:
        assert await second.waiting_callbacks() == [("task", waiting)]
        due = await second.due_callbacks(10.0, 10)
        assert [(c.target_id, c.next_at) for c in due] == [(armed, 9.0)]
        found = await second.get_callback("task", armed)
        assert found is not None and [a.status_code for a in found.attempts] == [503]
    finally:
        await second.close()


async def test_tracebacks_stay_with_their_attempt(store: Store) -> None:
    t = task(worker="Trace")
    await store.insert(t)
    await store.transition(t.id, [Status.QUEUED], Status.RUNNING, fields={"started_at": 1002.0})
    await store.transition(
        t.id,
        [Status.RUNNING],
        Status.QUEUED,
        record_as=Status.FAILED,
        fields={"attempt": 2, "error": "ValueError: one", "finished_at": 1003.0},
        traceback="Traceback (most recent call last):\nValueError: one\n",
    )
    await store.transition(t.id, [Status.QUEUED], Status.RUNNING, fields={"started_at": 1004.0})
    # A move that does not close the attempt stores no traceback anywhere.
    await store.transition(t.id, [Status.RUNNING], Status.PAUSED, traceback="ignored")
    await store.transition(
        t.id,
        [Status.PAUSED],
        Status.FAILED,
        fields={"finished_at": 1006.0, "error": "KeyError: 'two'"},
        traceback="Traceback (most recent call last):\nKeyError: 'two'\n",
    )
    attempts = await store.attempts(t.id)
    assert [a.traceback for a in attempts] == [
        "Traceback (most recent call last):\nValueError: one\n",
        "Traceback (most recent call last):\nKeyError: 'two'\n",
    ]
    # Re-running after the failure starts clean: the new attempt has no traceback of its own.
    await store.transition(t.id, [Status.FAILED], Status.QUEUED, fields={"attempt": 3})
    await store.transition(t.id, [Status.QUEUED], Status.RUNNING, fields={"started_at": 1007.0})
    await store.transition(t.id, [Status.RUNNING], Status.COMPLETED, fields={"result": {"r": 1}})
    assert (await store.attempts(t.id))[2].traceback is None


async def test_sqlite_adds_the_traceback_column_to_an_older_database(tmp_path: Path) -> None:
    path = tmp_path / "tasky.db"
    old = sqlite3.connect(path)
    # task_attempts as released before tracebacks, with one row from back then.
    old.executescript(
        "CREATE TABLE task_attempts (task_id TEXT NOT NULL, attempt INTEGER NOT NULL, "
        "status TEXT NOT NULL, started_at REAL, finished_at REAL, error TEXT, result TEXT, "
        "PRIMARY KEY (task_id, attempt)) WITHOUT ROWID;"
        "INSERT INTO task_attempts VALUES ('old', 1, 'Failed', 1.0, 2.0, 'boom', NULL);"
    )
    old.commit()
    old.close()
    for _ in range(2):  # the second open finds the column there and leaves it alone
        s = SqliteStore(path)
        await s.open()
        try:
            [before] = await s.attempts("old")
            assert (before.error, before.traceback) == ("boom", None)
            t = task()
            await s.insert(t)
            await s.transition(t.id, [Status.QUEUED], Status.FAILED, traceback="tb")
            assert [a.traceback for a in await s.attempts(t.id)] == ["tb"]
        finally:
            await s.close()


# -- schedules ------------------------------------------------------------------------------------
def schedule(name: str = "nightly", **kw: object) -> ScheduleRecord:
    fields: dict[str, object] = {
        "worker": "W",
        "chain": None,
        "config": {"n": 1},
        "cron": None,
        "interval": 60.0,
        "timezone": "UTC",
        "catch_up": "skip",
        "next_run": 2000.0,
        "created_at": 1000.0,
    }
    fields.update(kw)
    return ScheduleRecord(name=name, **fields)  # type: ignore[arg-type]


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
    # Both claims in flight at once (one group-commit batch): the compare-and-set decides.
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


# -- retention ------------------------------------------------------------------------------------
async def _finish(store: Store, t: TaskRecord, outcome: Status, at: float) -> None:
    """Run ``t`` and end it at ``at`` (one attempt of one second, in the statistics)."""
    fields: dict[str, object] = {"started_at": at - 1.0}
    assert await store.transition(t.id, [Status.QUEUED], Status.RUNNING, fields=fields)
    assert await store.transition(t.id, [Status.RUNNING], outcome, fields={"finished_at": at})


async def test_prune_finished_keeps_unfinished_recent_chained_and_statistics(
    store: Store,
) -> None:
    old = [task(worker="P") for _ in range(3)]
    for t, outcome in zip(old, (Status.COMPLETED, Status.FAILED, Status.CANCELED), strict=True):
        await store.insert(t)
        await _finish(store, t, outcome, 2000.0)
    await store.append_logs([(old[0].id, 2000.0, "a line"), (old[1].id, 2000.0, "b")], 100)
    recent, chained, other = task(worker="P"), task(worker="P", chain_id="c1"), task(worker="Q")
    for t in (recent, chained, other):
        await store.insert(t)
    await _finish(store, recent, Status.COMPLETED, 9000.0)
    await _finish(store, chained, Status.COMPLETED, 2000.0)
    await _finish(store, other, Status.COMPLETED, 2000.0)
    # Unfinished tasks are kept whatever their age.
    queued, running = task(worker="P", created_at=1.0), task(worker="P", created_at=1.0)
    await store.insert(queued)
    await store.insert(running)
    await store.transition(running.id, [Status.QUEUED], Status.RUNNING, fields={"started_at": 2.0})
    before_stats = await store.worker_stats("P")

    assert await store.count_prunable(5000.0, "P") == 3
    assert await store.count_prunable(5000.0, None) == 4  # and Q's
    assert await store.count_prunable(1999.0, None) == 0  # strictly before
    assert await store.prune_finished(5000.0, "P", 2) == 2  # the limit is kept
    assert await store.prune_finished(5000.0, "P", 2) == 1
    assert await store.prune_finished(5000.0, "P", 2) == 0
    for t in old:
        assert await store.get(t.id) is None
        assert await store.logs(t.id) == [] and await store.attempts(t.id) == []
    for t in (recent, chained, other, queued, running):
        assert await store.get(t.id) is not None
    assert len(await store.attempts(recent.id)) == 1
    # What was pruned still counts: status counts, tasks performed, run times.
    after_stats = await store.worker_stats("P")
    assert after_stats.by_status == before_stats.by_status
    assert after_stats.by_status["Completed"] == 3 and after_stats.by_status["Failed"] == 1
    assert (after_stats.finished, after_stats.run_time_hist) == (
        before_stats.finished,
        before_stats.run_time_hist,
    )
    assert after_stats.finished == 5  # three pruned, the recent one, the chained one
    assert await store.prune_finished(5000.0, None, 100) == 1  # Q's; the chained one stays
    assert await store.get(other.id) is None and await store.get(chained.id) is not None
    assert await store.count_prunable(5000.0, None) == 0


async def test_prune_finished_chains_with_steps_and_tasks(store: Store) -> None:
    chains = store.chains
    done_chain, running_chain = new_id(), new_id()
    done_tasks = [task(worker="C", chain_id=done_chain) for _ in range(2)]
    live_tasks = [task(worker="C", chain_id=running_chain) for _ in range(2)]
    for t in done_tasks + live_tasks:
        await store.insert(t)
        await store.append_logs([(t.id, 1.0, "line")], 10)
    for t in done_tasks + live_tasks[:1]:
        await _finish(store, t, Status.COMPLETED, 2000.0)
    for chain_id, status, ts in (
        (done_chain, Status.COMPLETED, done_tasks),
        (running_chain, Status.RUNNING, live_tasks),
    ):
        record = ChainRecord(chain_id, {"steps": []}, {}, status, 1000.0)
        steps = [StepRecord(chain_id, f"s{i}", i, "submitted", t.id) for i, t in enumerate(ts)]
        await chains.create(record, steps)
    # A finished chain and a running one whose finished_at is old (a restarted chain keeps its
    # old value until it ends again): only the finished one may go.
    assert await chains.set_status(
        done_chain, [Status.COMPLETED], Status.COMPLETED, fields={"finished_at": 2000.0}
    )
    assert await chains.set_status(
        running_chain, [Status.RUNNING], Status.RUNNING, fields={"finished_at": 2000.0}
    )

    assert await chains.count_prunable(1999.0) == 0
    assert await chains.count_prunable(5000.0) == 1
    # Chain tasks are not the tasks store's to prune.
    assert await store.prune_finished(5000.0, None, 100) == 0
    assert await chains.prune_finished(5000.0, 10) == 1
    assert await chains.get(done_chain) is None and await chains.steps(done_chain) == []
    for t in done_tasks:
        assert await store.get(t.id) is None
        assert await store.logs(t.id) == [] and await store.attempts(t.id) == []
    assert await chains.get(running_chain) is not None
    assert len(await chains.steps(running_chain)) == 2
    for t in live_tasks:
        assert await store.get(t.id) is not None
    assert await chains.prune_finished(5000.0, 10) == 0
    assert (await store.worker_stats("C")).by_status["Completed"] == 3
