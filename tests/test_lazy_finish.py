"""A task's end that nothing waits on at once (no chain step after it, no task of its worker
waiting for the slot) is held a moment by the SQLite store and committed with the next write:
a client submitting one task after another then pays one commit per task, not two."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from tasky import AsyncTaskContext, worker
from tasky.api import TaskyApp
from tasky.engine import Engine
from tasky.ids import new_id
from tasky.states import Status
from tasky.store import sqlite as sqlite_module
from tasky.store.records import AttemptEnd, Outcome, TaskRecord
from tasky.store.sqlite import SqliteStore
from tasky.workers.registry import WorkerRegistry
from tests.helpers import API, wait_for


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "tasky.db")
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


def _commits(store: SqliteStore) -> int:
    return store.commit_stats().seconds.count


async def _running(store: SqliteStore) -> TaskRecord:
    task = TaskRecord(
        id=new_id(), worker="W", status=Status.RUNNING, config={}, created_at=1.0, queued_at=1.0
    )
    task.owner, task.started_at, task.lease_until = "me", 2.0, 1e12
    return await store.submit(task)


def _queued() -> TaskRecord:
    return TaskRecord(
        id=new_id(), worker="W", status=Status.QUEUED, config={}, created_at=1.0, queued_at=1.0
    )


async def test_a_lazy_end_rides_on_the_next_writes_commit(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "FINISH_WAIT", 60.0)
    task = await _running(store)
    before = _commits(store)
    end = asyncio.ensure_future(
        store.finish(task.id, "me", 1, Outcome(Status.COMPLETED, 3.0), lazy=True)
    )
    await asyncio.sleep(0.2)  # long enough for a commit of its own, which must not happen
    assert not end.done() and _commits(store) == before
    await store.submit(_queued())
    assert await end
    assert _commits(store) - before == 1  # one commit carried both
    found = await store.get(task.id)
    assert found is not None and found.status is Status.COMPLETED


async def test_a_lazy_end_is_committed_alone_after_a_moment(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "FINISH_WAIT", 0.01)
    task = await _running(store)
    before = _commits(store)
    outcome = Outcome(Status.COMPLETED, 3.0)
    assert await asyncio.wait_for(store.finish(task.id, "me", 1, outcome, lazy=True), 30)
    assert _commits(store) - before == 1


async def test_a_lazy_end_cuts_a_held_audit_rows_wait_short(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The audit rows' long wait (TRAILING_DELAY) must not hold an end back: the sooner due
    time wins."""
    monkeypatch.setattr(sqlite_module, "TRAILING_DELAY", 60.0)
    monkeypatch.setattr(sqlite_module, "FINISH_WAIT", 0.01)
    task = await _running(store)
    audit = asyncio.ensure_future(store.record_audit([]))
    await asyncio.sleep(0)
    outcome = Outcome(Status.COMPLETED, 3.0)
    assert await asyncio.wait_for(store.finish(task.id, "me", 1, outcome, lazy=True), 30)
    await asyncio.wait_for(audit, 30)


async def test_a_held_end_is_committed_before_the_writes_made_after_it(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "FINISH_WAIT", 60.0)
    task = await _running(store)
    end = asyncio.ensure_future(
        store.finish(task.id, "me", 1, Outcome(Status.COMPLETED, 3.0), lazy=True)
    )
    await asyncio.sleep(0.05)

    def status_seen(conn: sqlite3.Connection) -> str:
        return str(conn.execute("SELECT status FROM tasks WHERE id = ?", (task.id,)).fetchone()[0])

    assert await store.write(status_seen) == "Completed"
    assert await end


@worker("Quick", description="Completes at once.", max_tasks=1)
async def quick(config: Any, task: AsyncTaskContext) -> None:
    await asyncio.sleep(0.05)


@pytest.fixture
def registry(registry: WorkerRegistry) -> WorkerRegistry:
    registry.register(quick)
    return registry


@pytest.fixture
async def lazies(app: TaskyApp, client: httpx.AsyncClient) -> list[tuple[str, bool]]:
    """(task id, lazy) of every end the engine records from now on."""
    engine: Engine = app.state.engine
    seen: list[tuple[str, bool]] = []
    finish = engine.store.finish

    async def recording(
        task_id: str, owner: str, attempt: int, outcome: Outcome, lazy: bool = False
    ) -> bool:
        seen.append((task_id, lazy))
        return await finish(task_id, owner, attempt, outcome, lazy)

    finish_many = engine.store.finish_many

    async def recording_many(ends: Sequence[AttemptEnd], lazy: bool = False) -> list[bool]:
        seen.extend((end.task_id, lazy) for end in ends)
        return await finish_many(ends, lazy)

    engine.store.finish = recording  # type: ignore[method-assign]
    engine.store.finish_many = recording_many  # type: ignore[method-assign]
    return seen


async def test_the_end_of_a_lone_task_is_lazy_one_with_tasks_waiting_is_not(
    client: httpx.AsyncClient, lazies: list[tuple[str, bool]]
) -> None:
    lone = (await client.post(f"{API}/workers/Quick", json={})).json()["TaskId"]
    await wait_for(client, lone, "Completed")
    # Three at once on one slot: the first two end while the next waits for their slot.
    ids = [(await client.post(f"{API}/workers/Quick", json={})).json()["TaskId"] for _ in "abc"]
    for task_id in ids:
        await wait_for(client, task_id, "Completed")
    ended = dict(lazies)
    assert ended[lone] is True
    assert ended[ids[0]] is False and ended[ids[1]] is False
