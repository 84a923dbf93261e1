"""Group commit in the SQLite store: one batch per loop iteration, a failing write refused alone."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tasky.ids import new_id
from tasky.states import Status
from tasky.store.records import Claim, TaskRecord
from tasky.store.sqlite import SqliteStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "tasky.db")
    await s.open()
    yield s
    await s.close()


def _task() -> TaskRecord:
    now = time.time()
    return TaskRecord(
        id=new_id(), worker="W", status=Status.QUEUED, config={}, created_at=now, queued_at=now
    )


def _count(store: SqliteStore) -> int:
    row = store._r.execute("SELECT count(*) FROM tasks").fetchone()
    return int(row[0])


async def test_one_loop_iteration_is_one_transaction(store: SqliteStore) -> None:
    batches: list[int] = []
    run_batch = store._run_batch

    def counting(conn: sqlite3.Connection, batch: list[object]) -> None:
        batches.append(len(batch))
        run_batch(conn, batch)  # type: ignore[arg-type]

    store._run_batch = counting  # type: ignore[method-assign]
    await asyncio.gather(*(store.submit(_task()) for _ in range(50)))
    assert batches == [50]
    assert _count(store) == 50


async def test_a_failing_operation_is_undone_alone(store: SqliteStore) -> None:
    good = _task()
    await store.submit(good)

    def failing(conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE tasks SET error = 'half done' WHERE id = ?", (good.id,))
        raise RuntimeError("refused")

    def marking(conn: sqlite3.Connection) -> str:
        conn.execute("UPDATE tasks SET progress = 0.5 WHERE id = ?", (good.id,))
        return "marked"

    new = [_task() for _ in range(3)]
    # Submitted in one iteration, so inserts and operations share one batch and one commit.
    results = await asyncio.gather(
        store._submit(marking),
        store._submit(failing),
        store.claim("W", Claim("node-a", time.time() + 30, limit=1), time.time()),
        *(store.submit(t) for t in new),
        return_exceptions=True,
    )
    assert results[0] == "marked"
    assert isinstance(results[1], RuntimeError)
    assert [t.id for t in results[2]] == [good.id]  # type: ignore[union-attr]
    assert [t.status for t in results[3:]] == [Status.QUEUED] * 3  # type: ignore[union-attr]
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
        await store._submit(failing)
    await store.submit(_task())
    assert _count(store) == 1
