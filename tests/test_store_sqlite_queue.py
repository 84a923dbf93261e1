"""The SQLite store's queue: where a claiming submit lands inside one group-commit batch, and an
older database brought up to the columns and indexes the queue needs."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from tasky.ids import new_id
from tasky.states import Status
from tasky.store.records import Claim, TaskRecord
from tasky.store.sqlite import SqliteStore
from tasky.store.sqlite_tasks import REAL_COLUMNS, RUNNABLE
from tests.sqlite_store_helpers import batch_sizes, sqlite_store, traced

store = sqlite_store


def task(at: float, worker: str = "W", **fields: object) -> TaskRecord:
    return TaskRecord(new_id(), worker, Status.QUEUED, {}, at, queued_at=at, **fields)  # type: ignore[arg-type]


def claim(limit: int, owner: str = "node-a") -> Claim:
    return Claim(owner, 5000.0, limit)


async def test_claiming_submits_of_one_batch_start_while_slots_are_free(store: SqliteStore) -> None:
    batches = batch_sizes(store)
    stored = await asyncio.gather(*(store.submit(task(1000.0 + i), claim(2)) for i in range(5)))
    assert batches == [5]
    assert [t.status for t in stored] == [Status.RUNNING] * 2 + [Status.QUEUED] * 3
    assert [t.owner for t in stored[:2]] == ["node-a", "node-a"]
    assert [t.seq for t in stored] == sorted(t.seq for t in stored)
    for record in stored:
        assert await store.get(record.id) == record


async def test_a_plain_submit_earlier_in_the_batch_keeps_its_place(store: SqliteStore) -> None:
    first = task(1000.0)
    stored = await asyncio.gather(store.submit(first), store.submit(task(1001.0), claim(5)))
    assert [t.status for t in stored] == [Status.QUEUED, Status.QUEUED]


async def test_only_a_runnable_task_ahead_keeps_a_claiming_submit_waiting(
    store: SqliteStore,
) -> None:
    # A retry waiting out its backoff is not ahead of anyone yet; another worker's queue neither.
    await store.submit(task(1000.0, run_after=9000.0))
    await store.submit(task(1000.0, worker="Other"))
    started = await store.submit(task(1001.0), claim(1))
    assert started.status is Status.RUNNING
    assert started.started_at == 1001.0
    # The worker's only slot is taken now, by whichever owner.
    assert (await store.submit(task(1002.0), claim(1, "node-b"))).status is Status.QUEUED


async def test_a_duplicate_in_a_claiming_batch_fails_alone(store: SqliteStore) -> None:
    existing = task(999.0, worker="Other")
    await store.submit(existing)
    new = [task(1000.0 + i) for i in range(4)]
    results = await asyncio.gather(
        store.submit(new[0], claim(2)),
        store.submit(existing, claim(2)),
        *(store.submit(t, claim(2)) for t in new[1:]),
        return_exceptions=True,
    )
    assert isinstance(results[1], sqlite3.IntegrityError)
    placed = [r for r in results if isinstance(r, TaskRecord)]
    # Re-placed one by one after the refusal: still two started, in submit order, the rest queued.
    assert [t.status for t in placed] == [Status.RUNNING] * 2 + [Status.QUEUED] * 2
    assert [t.id for t in placed] == [t.id for t in new]
    for record in placed:
        assert await store.get(record.id) == record


async def test_submit_many_starts_at_most_the_claims_count(store: SqliteStore) -> None:
    stored = await store.submit_many([task(1000.0) for _ in range(4)], Claim("a", 5000.0, 10, 1))
    assert [t.status for t in stored] == [Status.RUNNING] + [Status.QUEUED] * 3


_OLD_TASKS = """
CREATE TABLE tasks (
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, worker TEXT NOT NULL,
    status TEXT NOT NULL, config TEXT NOT NULL, created_at REAL NOT NULL, queued_at REAL,
    started_at REAL, finished_at REAL, attempt INTEGER NOT NULL DEFAULT 1,
    retries INTEGER NOT NULL DEFAULT 0, timeout REAL, progress REAL, progress_message TEXT,
    result TEXT, error TEXT, owner TEXT, lease_until REAL, run_after REAL, chain_id TEXT,
    logs_dropped INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


async def test_an_older_database_gets_the_queue_columns(tmp_path: Path) -> None:
    path = tmp_path / "tasky.db"
    conn = sqlite3.connect(path)
    conn.executescript(_OLD_TASKS)
    rows = [
        # (id, status, queued_at, run_after, owner): a retry waiting until 1500, two queued,
        # and a finished task that older versions left with its owner.
        ("retry", "Queued", 1000.0, 1500.0, None),
        ("second", "Queued", 1200.0, None, None),
        ("first", "Queued", 1100.0, None, None),
        ("done", "Completed", 900.0, None, "old-node"),
    ]
    conn.executemany(
        "INSERT INTO tasks (id, worker, status, config, created_at, queued_at, run_after, owner) "
        "VALUES (?, 'W', ?, '{}', 0, ?, ?, ?)",
        [(i, s, q, r, o) for i, s, q, r, o in rows],
    )
    conn.commit()
    conn.close()
    store = SqliteStore(path)
    await store.open()
    try:
        tables = {r[0] for r in store._r.execute("SELECT name FROM sqlite_master")}
        assert "kv" not in tables
        assert {"tasks_queue", "tasks_held"} <= tables
        assert "tasks_ready" not in tables  # the full index of earlier versions
        assert await store.next_runnable_at("W") == 1100.0
        # Queue order is when each task joined the queue, not when it was inserted; the old
        # finished task's owner does not count as holding a slot.
        claimed = await store.claim("W", claim(3), 1300.0)
        assert [t.id for t in claimed] == ["first", "second"]
        assert [t.id for t in await store.claim("W", claim(3), 1600.0)] == ["retry"]
        assert (await store.get("done")).owner is None  # type: ignore[union-attr]
    finally:
        await store.close()
    reopened = SqliteStore(path)
    await reopened.open()  # a second open finds everything in place
    await reopened.close()


async def test_a_batch_replayed_after_a_failing_operation_places_its_tasks_once(
    store: SqliteStore,
) -> None:
    def failing(conn: sqlite3.Connection) -> None:
        raise RuntimeError("refused")

    async def fail() -> None:  # a coroutine, so it joins the batch after the submits
        await store._submit(failing)

    # The failing operation undoes the whole batch, which is then run again: the inserts and
    # the batch submit must be placed afresh, not as the undone first run had placed them.
    single = [task(1000.0 + i) for i in range(2)]
    batch = [task(1010.0 + i, worker="B") for i in range(3)]
    results = await asyncio.gather(
        *(store.submit(t, claim(1)) for t in single),
        store.submit_many(batch, Claim("node-a", 5000.0, 2)),
        fail(),
        return_exceptions=True,
    )
    assert isinstance(results[3], RuntimeError)
    assert [t.status for t in results[:2]] == [Status.RUNNING, Status.QUEUED]  # type: ignore[union-attr]
    many = results[2]
    assert isinstance(many, list)
    assert [t.status for t in many] == [Status.RUNNING, Status.RUNNING, Status.QUEUED]
    for record in [*single, *batch]:
        assert await store.get(record.id) == record
    assert await store.claim("W", claim(1), 2000.0) == []
    assert await store.claim("B", claim(2), 2000.0) == []


async def test_the_full_queue_index_of_earlier_versions_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "tasky.db"
    first = SqliteStore(path)
    await first.open()
    await first.submit_many([task(1000.0 + i) for i in range(3)])
    await first.close()
    # As an earlier version left it: the queue's index covered every row, of every status.
    conn = sqlite3.connect(path)
    conn.execute("DROP INDEX tasks_queue")
    conn.execute("CREATE INDEX tasks_ready ON tasks (worker, status, ready_at, seq)")
    conn.commit()
    conn.close()
    store = SqliteStore(path)
    await store.open()
    try:
        indexes = {r[0] for r in store._r.execute("SELECT name FROM sqlite_master")}
        assert "tasks_ready" not in indexes
        assert "tasks_queue" in indexes
        assert len(await store.claim("W", claim(2), 2000.0)) == 2
        assert await store.next_runnable_at("W") == 1002.0
    finally:
        await store.close()


async def test_the_claim_reads_the_queue_in_order_from_the_partial_index(
    store: SqliteStore,
) -> None:
    """The claim's guard names its one status with ``=``: with ``IN ('Queued')`` SQLite cannot
    prove the partial index's WHERE and sorts the worker's whole queue on every claim."""
    plan = [
        row[-1]
        for row in store._r.execute(
            "EXPLAIN QUERY PLAN " + RUNNABLE, ("W", 1.0, "[]", 10)
        ).fetchall()
    ]
    assert plan[0] == "SEARCH tasks USING INDEX tasks_queue (worker=? AND status=?)", plan
    assert not any("TEMP B-TREE" in step for step in plan), plan
    # Partial: claimed and finished tasks leave the index, so moves past the queue cost it
    # nothing.
    partial = {r[1]: r[4] for r in store._r.execute("PRAGMA index_list(tasks)")}
    assert partial["tasks_queue"] == 1


async def test_a_claim_reads_its_tasks_exactly_and_in_queue_order(store: SqliteStore) -> None:
    """The claim reads its tasks as one JSON value (see RUNNABLE_AS_ONE): each comes back as
    stored, every float the very double (a timestamp has 17 significant digits; JSON's default
    15 would lose its microseconds), in queue order (ready_at, then seq) whatever order the
    JSON aggregate saw them in."""
    at = 1764519062.4567891
    # Queued in reverse order of their submits; the last two share a queue time.
    tasks = [task(at - i * 0.1000000000000001, timeout=0.1 + 0.2) for i in range(4)]
    tied = tasks[-1].queued_at
    assert tied is not None
    tasks.append(TaskRecord(new_id(), "W", Status.QUEUED, {"a": "\x00 ü"}, tied, queued_at=tied))
    stored = [await store.submit(t) for t in tasks]
    claimed_at = at + 0.0000001
    claimed = await store.claim("W", claim(10), claimed_at)
    expected = sorted(stored, key=lambda t: (t.queued_at, t.seq))
    assert [t.id for t in claimed] == [t.id for t in expected]
    for record in claimed:
        assert record == await store.get(record.id)  # every field, as a read finds it
        assert record.started_at == claimed_at
    assert [t.id for t in claimed[:2]] == [tasks[3].id, tasks[4].id]  # a tie: by seq
    assert claimed[1].config == {"a": "\x00 ü"}
    assert claimed[0].timeout == 0.30000000000000004


async def test_a_claim_of_many_tasks_reads_them_in_one_row(store: SqliteStore) -> None:
    """Each row the writer steps lets go of the GIL and takes it back, a wait while the event
    loop runs Python: a claim reads its tasks as one JSON value, not a row per task."""
    await store.submit_many([task(1000.0 + i) for i in range(300)])
    with traced(store) as seen:
        claimed = await store.claim("W", claim(300), 2000.0)
    assert len(claimed) == 300
    reads = [sql for sql in seen if sql.startswith("SELECT") and "FROM tasks" in sql]
    assert any(sql.startswith("SELECT json_group_array") for sql in reads), reads
    assert not any(sql.startswith(RUNNABLE[:40]) for sql in reads), reads


async def test_every_real_column_of_tasks_is_read_exactly(store: SqliteStore) -> None:
    """A claim's and a finish's one-row reads render the REAL columns they know through
    exact_json; a REAL column added to the table and not to REAL_COLUMNS would come back with
    15 digits only."""
    columns = store._r.execute("PRAGMA table_info(tasks)").fetchall()
    assert {name for _, name, kind, *_ in columns if kind == "REAL"} == REAL_COLUMNS
