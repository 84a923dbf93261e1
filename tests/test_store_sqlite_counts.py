"""The SQLite store's status counts stay exact over every way a task row is inserted: new rows
are counted by the insert statement itself (one upsert per worker and status), not by a per-row
trigger, so each insert path is checked against a real count of the rows."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from tasky.ids import new_id
from tasky.states import Status
from tasky.store.records import Claim, IdempotencyRecord, Outcome, TaskRecord
from tasky.store.sqlite import SqliteStore
from tests.sqlite_store_helpers import sqlite_store

# The insert trigger of earlier versions (which a migrated database must lose).
_OLD_TRIGGER = """
CREATE TRIGGER count_insert AFTER INSERT ON tasks BEGIN
    INSERT INTO status_counts (worker, status, n) VALUES (new.worker, new.status, 1)
    ON CONFLICT (worker, status) DO UPDATE SET n = n + 1;
END;
"""


store = sqlite_store


def task(worker: str = "W", status: Status = Status.QUEUED, **fields: object) -> TaskRecord:
    return TaskRecord(new_id(), worker, status, {}, 1000.0, queued_at=1000.0, **fields)  # type: ignore[arg-type]


def key(name: str) -> IdempotencyRecord:
    return IdempotencyRecord("me", name, "fp", "", 1000.0, 9e9)


def claim(limit: int) -> Claim:
    return Claim("node-a", 5000.0, limit)


def counts(
    conn: sqlite3.Connection,
) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], int]]:
    """(status_counts without its zeros, a real count of the rows)."""
    kept = {(w, s): n for w, s, n in conn.execute("SELECT worker, status, n FROM status_counts")}
    real = {
        (w, s): n
        for w, s, n in conn.execute("SELECT worker, status, count(*) FROM tasks GROUP BY 1, 2")
    }
    return {k: n for k, n in kept.items() if n != 0}, real


def assert_exact(store: SqliteStore) -> None:
    kept, real = counts(store._r)
    assert kept == real


async def test_every_insert_path_counts_its_rows_once(store: SqliteStore) -> None:
    await store.submit(task())
    assert_exact(store)
    await store.submit(task(), claim(1))  # placed Running
    assert_exact(store)
    await store.submit_many([task("A"), task("B"), task("A")])
    assert_exact(store)
    await store.submit_many([task("C") for _ in range(5)], claim(3))  # 3 Running, 2 Queued
    assert_exact(store)
    await store.submit_with_key(task("K"), key("one"), claim(1))
    await store.submit_with_key(task("K"), key("one"))  # the key's task exists: no insert
    assert_exact(store)
    await store.submit_many_with_key([task("K"), task("L")], key("two"))
    await store.submit_many_with_key([task("K"), task("L")], key("two"))
    assert_exact(store)
    # Rows as given, outside the writer, in several statuses.
    store.insert_many_now(
        [task("I"), task("I", Status.COMPLETED, finished_at=1001.0), task("J", Status.FAILED)]
    )
    assert_exact(store)
    assert (await store.worker_stats("I")).by_status["Completed"] == 1


async def test_refused_and_replayed_inserts_count_only_what_stays(store: SqliteStore) -> None:
    taken = task()
    await store.submit(taken)
    again = TaskRecord(taken.id, "W", Status.QUEUED, {}, 1000.0, queued_at=1000.0)

    def failing(conn: sqlite3.Connection) -> None:
        raise RuntimeError("refused")

    async def fail() -> None:  # a coroutine, so it joins the batch after the submits
        await store._submit(failing)

    # One batch: lone submits (one refused: a duplicate id, so the inserts are redone one by
    # one), a batch submit refused as a whole, another that stays, and an operation that fails
    # (so the whole batch is undone and replayed).
    results = await asyncio.gather(
        store.submit(task("D")),
        store.submit(again),
        store.submit(task("D"), claim(1)),
        store.submit_many([task("E"), again]),
        store.submit_many([task("E"), task("E")], claim(1)),
        fail(),
        return_exceptions=True,
    )
    assert isinstance(results[1], sqlite3.IntegrityError)
    assert isinstance(results[3], sqlite3.IntegrityError)
    assert isinstance(results[5], RuntimeError)
    assert_exact(store)
    by_status = (await store.worker_stats("E")).by_status
    assert {s: n for s, n in by_status.items() if n} == {"Queued": 1, "Running": 1}


async def test_moves_after_inserts_keep_the_counts(store: SqliteStore) -> None:
    stored = await store.submit_many([task() for _ in range(4)])
    claimed = await store.claim("W", claim(3), 1001.0)
    assert await store.finish(claimed[0].id, "node-a", 1, Outcome(Status.COMPLETED, 1002.0))
    assert await store.cancel(stored[3].id, 1003.0)
    assert await store.pause(claimed[1].id, "node-a", 1004.0)
    assert_exact(store)


async def test_an_older_database_loses_its_insert_trigger_and_stays_exact(tmp_path: Path) -> None:
    path = tmp_path / "tasky.db"
    first = SqliteStore(path)
    await first.open()
    await first.submit_many([task() for _ in range(3)])
    await first.close()
    conn = sqlite3.connect(path)
    conn.executescript(_OLD_TRIGGER)  # as an earlier version left the file
    conn.close()
    # Seeded before this version opens the file: the old trigger must not count the rows too.
    SqliteStore(path).insert_many_now([task(), task("X")])
    store = SqliteStore(path)
    await store.open()
    try:
        triggers = {
            r[0] for r in store._r.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        }
        assert "count_insert" not in triggers
        assert "count_update" in triggers
        await store.submit_many([task() for _ in range(2)])
        await store.submit(task("X"))
        assert_exact(store)
        assert (await store.worker_stats("W")).by_status["Queued"] == 6
    finally:
        await store.close()
