"""What only the SQLite store has: its group-commit writer, and the columns it adds to a database
made by an older Tasky. (Everything a store must do is in tests/store_contract.)"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from tasky.ids import new_id
from tasky.states import Status
from tasky.store.records import ChildRecord, Claim, Outcome, TaskRecord
from tasky.store.sqlite import WAL_AUTOCHECKPOINT, SqliteStore
from tasky.store.sqlite_tasks import ROWS_PER_INSERT, SMALL_INSERT
from tests.sqlite_store_helpers import batch_sizes, sqlite_store, traced, wal_frames

store = sqlite_store


def _task() -> TaskRecord:
    return TaskRecord(
        id=new_id(), worker="W", status=Status.QUEUED, config={}, created_at=1.0, queued_at=1.0
    )


def _count(store: SqliteStore) -> int:
    row = store.reader.execute("SELECT count(*) FROM tasks").fetchone()
    return int(row[0])


async def test_one_loop_iteration_is_one_transaction(store: SqliteStore) -> None:
    batches = batch_sizes(store)
    await asyncio.gather(*(store.submit(_task()) for _ in range(50)))
    assert batches == [50]
    assert _count(store) == 50


async def test_a_failing_operation_is_undone_alone(store: SqliteStore) -> None:
    good = await store.submit(_task())

    def failing(conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE tasks SET error = 'half done' WHERE id = ?", (good.id,))
        raise RuntimeError("refused")

    def marking(conn: sqlite3.Connection) -> str:
        conn.execute("UPDATE tasks SET progress = 0.5 WHERE id = ?", (good.id,))
        return "marked"

    new = [_task() for _ in range(3)]
    # Submitted in one iteration, so inserts and operations share one batch and one commit.
    results = await asyncio.gather(
        store.write(marking),
        store.write(failing),
        store.claim("W", Claim("node", 100.0, 10, count=1), 2.0),
        *(store.submit(t) for t in new),
        return_exceptions=True,
    )
    assert results[0] == "marked"
    assert isinstance(results[1], RuntimeError)
    assert [t.id for t in results[2]] == [good.id]  # type: ignore[union-attr]
    assert [t.id for t in results[3:]] == [t.id for t in new]  # type: ignore[union-attr]
    record = await store.get(good.id)
    assert record is not None
    assert record.progress == 0.5
    assert record.status is Status.RUNNING
    assert record.error is None  # the failing operation's own write was rolled back
    assert _count(store) == 4


async def test_writes_still_commit_after_a_failed_batch(store: SqliteStore) -> None:
    def failing(conn: sqlite3.Connection) -> None:
        raise ValueError("no")

    with pytest.raises(ValueError):
        await store.write(failing)
    await store.submit(_task())
    assert _count(store) == 1


async def test_a_duplicate_in_a_batch_fails_alone(store: SqliteStore) -> None:
    """A batch whose insert fails (here: a duplicate id) fails that caller with an error, and
    the writer keeps serving later writes instead of leaving them hanging."""
    first = await store.submit(_task())
    good = [_task() for _ in range(5)]
    results = await asyncio.gather(
        store.submit(good[0]),
        store.submit(first),
        *(store.submit(t) for t in good[1:]),
        return_exceptions=True,
    )
    assert isinstance(results[1], sqlite3.IntegrityError)
    assert [r.id for i, r in enumerate(results) if i != 1] == [t.id for t in good]  # type: ignore[union-attr]
    later = _task()
    await asyncio.wait_for(store.submit(later), 10)
    assert await store.get(later.id) is not None


async def test_the_traceback_column_is_added_to_an_older_database(tmp_path: Path) -> None:
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
            await s.submit(_task())
            [started] = await s.claim("W", Claim("node", 100.0, 10), 2.0)
            failed = Outcome(Status.FAILED, 3.0, error="x", traceback="tb")
            assert await s.finish(started.id, "node", 1, failed)
            assert [a.traceback for a in await s.attempts(started.id)] == ["tb"]
        finally:
            await s.close()


async def test_the_node_column_is_added_to_an_older_databases_children(tmp_path: Path) -> None:
    path = tmp_path / "tasky.db"
    old = sqlite3.connect(path)
    # task_children as released before nodes were told apart, with one row from back then.
    old.executescript(
        "CREATE TABLE task_children (task_id TEXT PRIMARY KEY, pgid INTEGER NOT NULL, "
        "start_ticks INTEGER NOT NULL, boot_id TEXT NOT NULL, mark TEXT NOT NULL);"
        "INSERT INTO task_children VALUES ('old', 101, 5, 'boot-1', 'mark');"
    )
    old.commit()
    old.close()
    s = SqliteStore(path)
    await s.open()
    try:
        new = ChildRecord("new", 102, 6, "boot-1", "mark-2", node="web-1")
        await s.record_child(new)
        found = sorted(await s.children(), key=lambda c: c.task_id)
        assert found == [new, ChildRecord("old", 101, 5, "boot-1", "mark")]
    finally:
        await s.close()


async def test_many_rows_are_inserted_in_statements_of_rows_per_insert(
    store: SqliteStore,
) -> None:
    """A group commit's new tasks go in few statements (of two workers here): a power of two
    rows while more than SMALL_INSERT are left, then the rest in one. Each task comes back with
    the seq it was stored under, and the per-worker counts hold every row once."""
    many = ROWS_PER_INSERT + SMALL_INSERT + 9
    tasks = [_task() for _ in range(many)]
    for task in tasks[::3]:
        task.worker = "V"
    with traced(store) as statements:
        stored = await asyncio.gather(*(store.submit(t) for t in tasks))
    seen = [sql.count("),") for sql in statements if sql.startswith("INSERT INTO tasks")]
    # A statement of n rows has n - 1 "),": 512 rows, 32, then the 9 left (on SQLite >= 3.32).
    assert seen == [ROWS_PER_INSERT - 1, SMALL_INSERT - 1, 8]
    assert (512 if sqlite3.sqlite_version_info >= (3, 32) else 32) == ROWS_PER_INSERT
    rows = dict(store.reader.execute("SELECT id, seq FROM tasks").fetchall())
    assert [t.seq for t in stored] == [rows[t.id] for t in tasks]
    assert len(set(rows.values())) == many
    w, v = (await store.worker_stats("W")).by_status, (await store.worker_stats("V")).by_status
    assert (w, v) == ({"Queued": many - len(tasks[::3])}, {"Queued": len(tasks[::3])})


async def test_the_writer_keeps_statement_journals_in_memory(store: SqliteStore) -> None:
    assert store._writer_conn is not None
    assert store._writer_conn.execute("PRAGMA temp_store").fetchone()[0] == 2  # MEMORY


def _wal_frames(store: SqliteStore) -> int:
    """Frames in the WAL (it is not restarted while no checkpoint runs)."""
    return wal_frames(store.path)


async def test_new_tasks_of_one_commit_share_the_pages_of_the_id_index(store: SqliteStore) -> None:
    """Ids made one after another sort one after another (tasky.ids), so a group commit of new
    tasks adds its entries of the unique index on ids next to each other instead of one page
    each. Measured: a commit of 30 new tasks into a store of 10,000 wrote ~16 WAL frames, ~46
    with 128-bit random ids."""
    for _ in range(10):
        await store.submit_many(
            [TaskRecord(new_id(), "W", Status.QUEUED, {}, 1.0) for _ in range(1000)]
        )
    before = _wal_frames(store)
    for _ in range(10):
        await store.submit_many(
            [TaskRecord(new_id(), "W", Status.QUEUED, {}, 1.0) for _ in range(30)]
        )
    per_commit = (_wal_frames(store) - before) / 10
    assert per_commit < 25


async def test_the_writer_checkpoints_every_wal_autocheckpoint_pages(store: SqliteStore) -> None:
    """Group commits of many random ids dirty pages all over the id index: the WAL keeps them
    for WAL_AUTOCHECKPOINT pages, not SQLite's 1,000, so a page dirtied again is copied once."""
    for _ in range(12):  # each commit ~250 pages: two rows of this size fill a page
        await store.submit_many(
            [TaskRecord(new_id(), "W", Status.QUEUED, {"n": "x" * 2000}, 1.0) for _ in range(500)]
        )
    with sqlite3.connect(store.path) as conn:
        _, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert 1_000 * 2 < frames <= WAL_AUTOCHECKPOINT
