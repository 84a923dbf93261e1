"""SQLite keeps a finished task's final attempt in the task's row: an end without a traceback
writes no task_attempts row (sqlite_moves.Finish.keeps_attempt_row), and the store shows that
attempt from the row, exactly as the row it no longer writes would have shown it."""

from __future__ import annotations

import sqlite3

from tasky.ids import new_id
from tasky.states import Status
from tasky.store.records import AttemptRecord, Claim, Outcome, TaskRecord
from tasky.store.sqlite import SqliteStore
from tests.sqlite_store_helpers import sqlite_store

OWNER = "node-a"
store = sqlite_store  # the fixture, by the name these tests take


async def _ran(store: SqliteStore, outcome: Outcome) -> str:
    """A task of worker A, claimed at 1100, paused 1110-1115, ended with ``outcome``."""
    task_id = new_id()
    await store.submit(TaskRecord(task_id, "A", Status.QUEUED, {}, 1000.0, queued_at=1000.0))
    assert [t.id for t in await store.claim("A", Claim(OWNER, 9e9, 1), 1100.0)] == [task_id]
    assert await store.pause(task_id, OWNER, 1110.0)
    assert await store.resume(task_id, OWNER, 1115.0)
    assert await store.finish(task_id, OWNER, 1, outcome)
    return task_id


def _rows(store: SqliteStore, task_id: str) -> int:
    with sqlite3.connect(store.path) as conn:
        found: int = conn.execute(
            "SELECT count(*) FROM task_attempts WHERE task_id = ?", (task_id,)
        ).fetchone()[0]
    return found


async def test_an_end_without_traceback_is_read_from_the_task_row(store: SqliteStore) -> None:
    outcome = Outcome(Status.COMPLETED, 1200.5, result={"n": [1, 2]}, progress_message="ok")
    task_id = await _ran(store, outcome)
    assert _rows(store, task_id) == 0
    node = (await store.get(task_id)).node  # type: ignore[union-attr]
    assert await store.attempts(task_id) == [
        AttemptRecord(1, Status.COMPLETED, 1100.0, 1200.5, None, {"n": [1, 2]}, None, node, 5.0)
    ]


async def test_an_end_with_a_traceback_keeps_its_row(store: SqliteStore) -> None:
    outcome = Outcome(Status.FAILED, 1200.0, error="boom", traceback="Traceback (most recent)")
    task_id = await _ran(store, outcome)
    assert _rows(store, task_id) == 1
    [attempt] = await store.attempts(task_id)
    assert (attempt.status, attempt.error, attempt.traceback) == (
        Status.FAILED,
        "boom",
        "Traceback (most recent)",
    )


async def test_a_row_an_older_version_wrote_for_the_final_attempt_shows_once(
    store: SqliteStore,
) -> None:
    task_id = await _ran(store, Outcome(Status.COMPLETED, 1200.0))
    with sqlite3.connect(store.path) as conn:  # what every end wrote before
        conn.execute(
            "INSERT INTO task_attempts (task_id, attempt, status, started_at, finished_at, "
            "paused_seconds) VALUES (?, 1, 'Completed', 1100.0, 1200.0, 5.0)",
            (task_id,),
        )
    assert [(a.attempt, a.status) for a in await store.attempts(task_id)] == [(1, Status.COMPLETED)]


async def test_a_rerun_moves_the_final_attempt_into_task_attempts(store: SqliteStore) -> None:
    task_id = await _ran(store, Outcome(Status.COMPLETED, 1200.0, result="first"))
    before = await store.attempts(task_id)
    assert await store.rerun(task_id, 1300.0)
    assert _rows(store, task_id) == 1
    assert await store.attempts(task_id) == before  # the new attempt has not ended
    claimed = await store.claim("A", Claim(OWNER, 9e9, 1), 1400.0)
    assert [t.attempt for t in claimed] == [2]
    assert await store.finish(task_id, OWNER, 2, Outcome(Status.COMPLETED, 1500.0, result="2nd"))
    shown = await store.attempts(task_id)
    assert [(a.attempt, a.result, a.started_at) for a in shown] == [
        (1, "first", 1100.0),
        (2, "2nd", 1400.0),
    ]
