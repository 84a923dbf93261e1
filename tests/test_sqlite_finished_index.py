"""The partial index of finished tasks (tasks_ended): retention's reads use it, and its WHERE is
ORed equalities, which SQLite evaluates per written row without building an ephemeral table (an
IN list of three constants built and cleared one on every insert and two on every update)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bench.seed import create_schema
from tasky.store.sqlite import _PRUNABLE, SqliteStore
from tests.sqlite_store_helpers import sqlite_store

store = sqlite_store


async def test_the_prune_read_is_a_range_of_the_finished_index(store: SqliteStore) -> None:
    plan = store.reader.execute(
        f"EXPLAIN QUERY PLAN SELECT count(*) {_PRUNABLE}", ("W", 1.0)
    ).fetchall()
    details = " ".join(str(row[-1]) for row in plan)
    assert "USING INDEX tasks_ended" in details or "USING COVERING INDEX tasks_ended" in details, (
        details
    )


def test_the_index_where_has_no_in_list_and_the_old_index_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    create_schema(path)
    # Made into a database of an earlier version: the IN-list index under its old name.
    conn = sqlite3.connect(path)
    conn.execute("DROP INDEX tasks_ended")
    conn.execute(
        "CREATE INDEX tasks_finished ON tasks (worker, finished_at) "
        "WHERE status IN ('Completed', 'Failed', 'Canceled')"
    )
    conn.commit()
    conn.close()
    create_schema(path)  # the store opened on it, as an upgraded server does
    conn = sqlite3.connect(path)
    try:
        indexes = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index'"))
    finally:
        conn.close()
    assert "tasks_finished" not in indexes
    where = indexes["tasks_ended"].partition("WHERE")[2]
    assert " IN " not in where.upper() and "OR" in where, where
