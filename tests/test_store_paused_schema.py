"""The columns that keep paused time out of run time, added to databases made before them (SQLite
by tasky.store.migrate, PostgreSQL by a schema version), and the index the queue positions read."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tasky import clock
from tasky.ids import new_id
from tasky.states import Status
from tasky.store.pg_schema import LATEST, MIGRATIONS
from tasky.store.postgres import PostgresStore
from tasky.store.records import Claim, Outcome, TaskRecord
from tasky.store.sqlite import SqliteStore
from tasky.store.sqlite_tasks import QUEUE_BETWEEN, QUEUE_FOUND, QUEUE_UP_TO
from tests.pg import fresh_schema


def _task(queued_at: float = 1.0) -> TaskRecord:
    return TaskRecord(
        id=new_id(),
        worker="W",
        status=Status.QUEUED,
        config={},
        created_at=queued_at,
        queued_at=queued_at,
    )


async def test_an_older_sqlite_database_gets_the_paused_columns(tmp_path: Path) -> None:
    path = tmp_path / "tasky.db"
    s = SqliteStore(path)
    await s.open()
    try:
        ended, paused = _task(), _task()
        await s.submit_many([ended, paused])
        await s.claim("W", Claim("node", 9e9, 10), 2.0)
        assert await s.finish(ended.id, "node", 1, Outcome(Status.COMPLETED, 5.0))
        assert await s.pause(paused.id, "node", 3.0)
    finally:
        await s.close()
    # The file as the release before these columns left it: the same tables without them.
    old = sqlite3.connect(path)
    for table, column in (
        ("tasks", "paused_seconds"),
        ("tasks", "paused_at"),
        ("task_attempts", "paused_seconds"),
    ):
        old.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    old.commit()
    old.close()

    before_open = clock.now()
    for _ in range(2):  # the second open finds the columns there and leaves them alone
        s = SqliteStore(path)
        await s.open()
        try:
            [attempt] = await s.attempts(ended.id)
            assert (attempt.paused_seconds, attempt.run_seconds) == (0.0, 3.0)
            found = await s.get(paused.id)
            assert found is not None and found.status is Status.PAUSED
            # When its pause began was not kept: it counts as paused from the migration on.
            assert found.paused_at is not None and found.paused_at >= before_open - 1
            assert found.paused_seconds == 0.0
        finally:
            await s.close()
    s = SqliteStore(path)
    await s.open()
    try:
        resumed_at = clock.now() + 5.0
        assert await s.resume(paused.id, "node", resumed_at)
        found = await s.get(paused.id)
        assert found is not None and found.paused_at is None and found.paused_seconds > 0
    finally:
        await s.close()


async def test_queue_positions_read_the_queue_index_only(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "tasky.db")
    await s.open()
    try:
        await s.submit_many([_task(float(i)) for i in range(20)])
    finally:
        await s.close()
    conn = sqlite3.connect(tmp_path / "tasky.db")
    try:
        plans = [
            conn.execute("EXPLAIN QUERY PLAN " + QUEUE_UP_TO, ("W", 5.0, 6)).fetchall(),
            conn.execute("EXPLAIN QUERY PLAN " + QUEUE_BETWEEN, ("W", 5.0, 6, 1.0, 2)).fetchall(),
        ]
        found = conn.execute(
            "EXPLAIN QUERY PLAN " + QUEUE_FOUND.format(marks="?, ?"), ("a", "b")
        ).fetchall()
    finally:
        conn.close()
    # The tasks asked about are found by id, not by walking the queue.
    assert [row[-1] for row in found] == [
        "SEARCH tasks USING INDEX sqlite_autoindex_tasks_1 (id=?)"
    ], found
    # Each stretch of the queue is a range of the partial (worker, status, ready_at, seq) index,
    # counted without reading a row.
    for plan, bounds in zip(plans, ("ready_at<?", "ready_at>? AND ready_at<?"), strict=True):
        assert [row[-1] for row in plan] == [
            f"SEARCH tasks USING COVERING INDEX tasks_queue (worker=? AND status=? AND {bounds})"
        ], plan


@pytest.fixture
def own_schema() -> Iterator[str]:
    with fresh_schema() as url:
        yield url


@pytest.mark.postgres
async def test_a_version_1_postgres_database_is_migrated(own_schema: str) -> None:
    assert LATEST >= 2
    paused, ended = new_id(), new_id()
    async with await psycopg.AsyncConnection.connect(own_schema, autocommit=True) as conn:
        # The schema as version 1 made it, with a task paused while running and an ended attempt.
        for statement in MIGRATIONS[0][1]:
            await conn.execute(statement)  # type: ignore[arg-type]
        await conn.execute("CREATE TABLE tasky_schema (version integer NOT NULL)")
        await conn.execute("INSERT INTO tasky_schema (version) VALUES (1)")
        await conn.execute(
            "INSERT INTO tasks (id, worker, status, config, created_at, queued_at, started_at, "
            "owner, lease_until) VALUES (%s, 'W', 'Paused', '{}', 1, 1, 2, 'node', 9e9)",
            (paused,),
        )
        await conn.execute(
            "INSERT INTO task_attempts (task_id, attempt, status, started_at, finished_at) "
            "VALUES (%s, 1, 'Completed', 2, 5)",
            (ended,),
        )
    before_open = clock.now()
    store = PostgresStore(own_schema)
    await store.open()
    try:
        found = await store.get(paused)
        assert found is not None and found.paused_seconds == 0.0
        assert found.paused_at is not None and found.paused_at >= before_open - 1
        [attempt] = await store.attempts(ended)
        assert (attempt.paused_seconds, attempt.run_seconds) == (0.0, 3.0)
        assert await store.resume(paused, "node", found.paused_at + 4.0)
        resumed = await store.get(paused)
        assert resumed is not None and (resumed.paused_at, resumed.paused_seconds) == (None, 4.0)
    finally:
        await store.close()
    async with await psycopg.AsyncConnection.connect(own_schema) as conn:
        rows = await (await conn.execute("SELECT version FROM tasky_schema")).fetchall()
    assert rows == [(LATEST,)]
