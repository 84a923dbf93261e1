"""The SQLite store commits a lone submit on the event loop while its writer thread is idle
(no hand-over to the thread and back), and hands everything else to the writer as before.
These tests open real database files."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from tasky.ids import new_id
from tasky.states import Status
from tasky.store import sqlite as sqlite_module
from tasky.store.records import Outcome, TaskRecord
from tasky.store.sqlite import SqliteStore
from tests.sqlite_store_helpers import sqlite_store
from tests.store_contract.records import audit_entry


@pytest.fixture(autouse=True)
def _any_commit_is_quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """A loaded test machine's fsync may take longer than INLINE_COMMIT_MAX: no test here
    depends on how long a commit took, except the one that sets its own limit."""
    monkeypatch.setattr(sqlite_module, "INLINE_COMMIT_MAX", 60.0)


store = sqlite_store


def _task(status: Status = Status.QUEUED) -> TaskRecord:
    return TaskRecord(
        id=new_id(), worker="W", status=status, config={}, created_at=1.0, queued_at=1.0
    )


def _threads_of_batches(store: SqliteStore) -> list[tuple[str, int]]:
    """Records (thread name, batch size) of every batch the store runs from now on."""
    seen: list[tuple[str, int]] = []
    run_batch = store._run_batch

    def recording(conn: sqlite3.Connection, batch: list[Any]) -> None:
        seen.append((threading.current_thread().name, len(batch)))
        run_batch(conn, batch)

    store._run_batch = recording  # type: ignore[method-assign]
    return seen


async def _writer_idle(store: SqliteStore) -> None:
    """Until the writer thread has begun its next transaction after delivering its last batch
    (SqliteStore._open_next): until then a lone submit goes to it, not to the loop."""
    for _ in range(1000):
        if not store._conn_lock.locked():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("the writer thread kept its connection for a second")


def _on_disk(path: Path, task_id: str) -> str | None:
    """The task's status as a fresh connection reads it: committed, not merely written."""
    conn = sqlite3.connect(path)
    try:
        row = conn.execute("SELECT status FROM tasks WHERE id = ?", (task_id,)).fetchone()
    finally:
        conn.close()
    return None if row is None else str(row[0])


async def _held_then_let_go_of(path: Path) -> None:
    """A write from outside the server finds the write lock held, then gets it within a few
    IDLE_TRANSACTIONs (10 s at most) and commits."""
    outside = sqlite3.connect(path, timeout=0)
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            outside.execute("BEGIN IMMEDIATE")
        deadline = asyncio.get_running_loop().time() + 10
        while True:
            await asyncio.sleep(sqlite_module.IDLE_TRANSACTION)
            try:
                outside.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError:
                assert asyncio.get_running_loop().time() < deadline, "never let go of"
                continue
            break
        outside.execute("DELETE FROM audit")
        outside.execute("COMMIT")
    finally:
        outside.close()


async def test_a_lone_submit_is_committed_on_the_loop_before_it_is_answered(
    store: SqliteStore, tmp_path: Path
) -> None:
    batches = _threads_of_batches(store)
    stored = await store.submit(_task())
    assert batches == [(threading.current_thread().name, 1)]
    assert _on_disk(tmp_path / "tasky.db", stored.id) == "Queued"
    assert store.commit_stats().seconds.count >= 1


async def test_a_lone_finish_goes_to_the_writer(store: SqliteStore, tmp_path: Path) -> None:
    """A task's end is committed on the writer: the loop meanwhile reads the next request."""
    running = _task(Status.RUNNING)
    running.owner, running.started_at, running.lease_until = "me", 2.0, 1e12
    await store.submit(running)
    batches = _threads_of_batches(store)
    assert await store.finish(running.id, "me", 1, Outcome(Status.COMPLETED, 3.0))
    assert batches == [("tasky-sqlite-writer", 1)]
    assert _on_disk(tmp_path / "tasky.db", running.id) == "Completed"


async def test_writes_of_one_iteration_still_go_to_the_writer_as_one_batch(
    store: SqliteStore,
) -> None:
    batches = _threads_of_batches(store)
    await asyncio.gather(*(store.submit(_task()) for _ in range(20)))
    assert batches == [("tasky-sqlite-writer", 20)]


async def test_other_writes_are_never_run_on_the_loop(store: SqliteStore) -> None:
    batches = _threads_of_batches(store)
    assert await store.write(lambda conn: conn.execute("SELECT 1").fetchone()[0]) == 1
    assert batches == [("tasky-sqlite-writer", 1)]


async def test_a_submit_behind_a_batch_in_flight_waits_for_it_on_the_writer(
    store: SqliteStore,
) -> None:
    """While the writer holds a batch, a lone submit must not commit around it on the loop: the
    writer owns the connection, and commits keep the order the writes were made in."""
    batches = _threads_of_batches(store)
    release = threading.Event()
    order: list[str] = []

    def slow(conn: sqlite3.Connection) -> None:
        release.wait(10)
        order.append("slow")

    first = asyncio.ensure_future(store.write(slow))
    await asyncio.sleep(0.05)  # the writer has taken it and waits inside it
    second = asyncio.ensure_future(store.submit(_task()))
    await asyncio.sleep(0.05)
    assert not second.done()  # not committed on the loop around the batch in flight
    release.set()
    await first
    stored = await second
    order.append(stored.id)
    assert [name for name, _ in batches] == ["tasky-sqlite-writer", "tasky-sqlite-writer"]
    assert order[0] == "slow"
    # The writer is idle again: the next lone submit is the loop's.
    await _writer_idle(store)
    await store.submit(_task())
    assert batches[2:] == [(threading.current_thread().name, 1)]


async def test_hand_overs_the_writer_merged_all_count_as_delivered(store: SqliteStore) -> None:
    """The writer runs every hand-over waiting in its queue as one batch: once that batch is
    delivered the writer is idle, and the next lone submit is the loop's again."""
    batches = _threads_of_batches(store)
    release = threading.Event()
    first = asyncio.ensure_future(store.write(lambda conn: release.wait(10)))
    await asyncio.sleep(0.05)  # the writer waits inside the first batch
    queued = [asyncio.ensure_future(store.write(lambda conn: None)) for _ in range(2)]
    await asyncio.sleep(0)  # the first hand-over
    queued.append(asyncio.ensure_future(store.write(lambda conn: None)))
    await asyncio.sleep(0.05)  # the second: two hand-overs wait in the queue
    release.set()
    await asyncio.gather(first, *queued)
    assert batches == [("tasky-sqlite-writer", 1), ("tasky-sqlite-writer", 3)]
    await _writer_idle(store)
    await store.submit(_task())
    assert batches[-1] == (threading.current_thread().name, 1)


async def test_slow_commits_send_lone_writes_back_to_the_writer(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk slow to sync must not stall the event loop: past INLINE_COMMIT_MAX per commit,
    even a lone write goes to the writer thread."""
    batches = _threads_of_batches(store)
    await store.submit(_task())
    monkeypatch.setattr(sqlite_module, "INLINE_COMMIT_MAX", 0.0)  # every commit is too slow
    await store.submit(_task())
    await store.submit(_task())
    assert batches == [
        (threading.current_thread().name, 1),
        ("tasky-sqlite-writer", 1),
        ("tasky-sqlite-writer", 1),
    ]


async def test_a_lone_submit_that_fails_on_the_loop_fails_alone(store: SqliteStore) -> None:
    first = await store.submit(_task())
    batches = _threads_of_batches(store)
    with pytest.raises(sqlite3.IntegrityError):
        await store.submit(first)  # the same id again
    later = await asyncio.wait_for(store.submit(_task()), 10)
    assert await store.get(later.id) is not None
    assert [name for name, _ in batches] == [threading.current_thread().name] * 2


async def test_audit_rows_do_not_ride_a_lone_submit_on_the_loop(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lone submit's commit on the loop carries only what concerns it (and a lazy task end):
    an audit row would add two pages to its commit. The row stays held and goes with the next
    hand-over to the writer."""
    monkeypatch.setattr(sqlite_module, "TRAILING_DELAY", 60.0)
    batches = _threads_of_batches(store)
    audit = asyncio.ensure_future(store.record_audit([audit_entry(1000.0, "held")]))
    await asyncio.sleep(0)
    await store.submit(_task())
    await store.submit(_task())
    assert batches == [(threading.current_thread().name, 1)] * 2
    assert not audit.done()
    await store.write(lambda conn: None)
    await asyncio.wait_for(audit, 10)
    assert batches[2:] == [("tasky-sqlite-writer", 2)]
    assert [e.target for e in (await store.list_audit()).entries] == ["held"]


async def test_audit_rows_held_past_lone_submits_are_committed_after_the_delay(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "TRAILING_DELAY", 0.2)
    batches = _threads_of_batches(store)
    audit = asyncio.ensure_future(store.record_audit([audit_entry(1000.0, "alone")]))
    await asyncio.sleep(0)
    await store.submit(_task())
    await asyncio.wait_for(audit, 30)
    assert batches == [(threading.current_thread().name, 1), ("tasky-sqlite-writer", 1)]
    assert [e.target for e in (await store.list_audit()).entries] == ["alone"]


async def test_a_lazy_task_end_still_rides_a_lone_submit_on_the_loop(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "FINISH_WAIT", 60.0)
    monkeypatch.setattr(sqlite_module, "TRAILING_DELAY", 60.0)
    running = _task(Status.RUNNING)
    running.owner, running.started_at, running.lease_until = "me", 2.0, 1e12
    await store.submit(running)
    batches = _threads_of_batches(store)
    ended = asyncio.ensure_future(
        store.finish(running.id, "me", 1, Outcome(Status.COMPLETED, 3.0), lazy=True)
    )
    audit = asyncio.ensure_future(store.record_audit([audit_entry(1000.0, "held")]))
    await asyncio.sleep(0)
    await store.submit(_task())
    assert await asyncio.wait_for(ended, 10)
    assert batches == [(threading.current_thread().name, 2)]  # the end and the submit
    assert not audit.done()


async def test_the_writer_begins_the_next_transaction_after_a_group_and_a_lone_submit_uses_it(
    store: SqliteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a group commit the writer thread begins the next transaction at once (its BEGIN's
    wait for the GIL then falls on no caller's way); a lone submit committed on the loop meanwhile
    commits in it, durably."""
    # Kept open however slow the machine is until the submit comes (ended when idle otherwise).
    monkeypatch.setattr(sqlite_module, "IDLE_TRANSACTION", 60.0)
    await store.write(lambda conn: None)
    await _writer_idle(store)
    conn = store._writer_conn
    assert conn is not None and conn.in_transaction  # begun by the writer, still empty
    task = _task()
    batches = _threads_of_batches(store)
    await store.submit(task)
    assert batches == [(threading.current_thread().name, 1)]
    assert not conn.in_transaction
    assert _on_disk(tmp_path / "tasky.db", task.id) == "Queued"


async def test_the_loop_never_commits_while_the_writer_begins_its_next_transaction(
    store: SqliteStore,
) -> None:
    """While the writer thread holds the connection (here: stopped inside its BEGIN of the next
    transaction, after its batch's outcomes reached the loop), a lone submit is handed to it
    instead of being committed on the loop around it (two threads on one connection)."""
    begun = threading.Event()
    go_on = threading.Event()
    open_next = store._open_next

    def slow_open_next(conn: Any) -> None:
        begun.set()
        go_on.wait(10)
        open_next(conn)

    store._open_next = slow_open_next  # type: ignore[method-assign]
    await store.write(lambda conn: None)
    assert await asyncio.to_thread(begun.wait, 10)
    batches = _threads_of_batches(store)
    pending = asyncio.ensure_future(store.submit(_task()))
    await asyncio.sleep(0.05)
    assert not pending.done()  # waits for the writer, not committed on the loop
    go_on.set()
    await pending
    assert batches == [("tasky-sqlite-writer", 1)]


async def test_an_idle_writer_lets_go_of_the_write_lock(
    store: SqliteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The empty transaction begun after a group holds the database's write lock; once no write
    has come for IDLE_TRANSACTION it is ended, so a write from outside the server (the sqlite3
    shell, a seeding script) gets in without a long busy wait."""
    await store.write(lambda conn: None)
    await _writer_idle(store)
    await _held_then_let_go_of(tmp_path / "tasky.db")  # the writer's empty transaction
    # And the store writes on afterwards, beginning its own transaction again.
    task = _task()
    await store.write(lambda conn: conn.execute("SELECT 1"))
    await store.submit(task)
    assert _on_disk(tmp_path / "tasky.db", task.id) == "Queued"


async def _loop_began_next(store: SqliteStore) -> bool:
    """Whether the loop began the next transaction once the lone submit's answer was out."""
    conn = store._writer_conn
    assert conn is not None
    for _ in range(10):
        if conn.in_transaction:
            return True
        await asyncio.sleep(0)
    return False


async def test_after_a_lone_submit_the_loop_begins_the_next_transaction_and_the_next_uses_it(
    store: SqliteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The BEGIN of a lone submit's transaction is made after the previous lone submit's answer
    (SqliteStore._begin_next_on_loop), off the next answer's way; the next lone submit commits
    in that transaction, on the loop, durably."""
    monkeypatch.setattr(sqlite_module, "IDLE_TRANSACTION", 60.0)
    await store.submit(_task())
    conn = store._writer_conn
    assert conn is not None
    assert not conn.in_transaction  # committed; the next BEGIN waits for the answer to go out
    assert await _loop_began_next(store)
    task = _task()
    batches = _threads_of_batches(store)
    await store.submit(task)
    assert batches == [(threading.current_thread().name, 1)]
    assert _on_disk(tmp_path / "tasky.db", task.id) == "Queued"
    assert await _loop_began_next(store)


async def test_the_loop_lets_go_of_the_write_lock_when_no_lone_submit_comes(
    store: SqliteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The empty transaction the loop begins after a lone submit holds the database's write
    lock; once no lone submit has come for IDLE_TRANSACTION the loop ends it, so a write from
    outside the server gets in. The writer thread, asleep with nothing handed to it, would never
    end it: this is the loop's own timer."""
    # Long enough that a loaded machine still finds the lock held right after the submits.
    monkeypatch.setattr(sqlite_module, "IDLE_TRANSACTION", 0.2)
    # The writer thread has ended its own idle transaction and waits with no timeout.
    await store.write(lambda conn: None)
    await asyncio.sleep(sqlite_module.IDLE_TRANSACTION * 3)
    for _ in range(3):  # lone submits, each moving the idle timer on
        await store.submit(_task())
    assert await _loop_began_next(store)
    await _held_then_let_go_of(tmp_path / "tasky.db")  # the loop's empty transaction
    task = _task()
    await store.submit(task)
    assert _on_disk(tmp_path / "tasky.db", task.id) == "Queued"
