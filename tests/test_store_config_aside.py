"""The SQLite store keeps a long config out of its task's row (tasky.store.sqlite_tasks
.CONFIG_ASIDE): each later write of the row (claim, end, pause, ...) then leaves the config's
pages alone. What every store must do with long configs is in
tests/store_contract/test_long_configs.py."""

from __future__ import annotations

from typing import Any

import pytest

from tasky.ids import new_id
from tasky.states import Status
from tasky.store import sqlite_tasks
from tasky.store.records import Claim, Outcome, TaskRecord
from tasky.store.sqlite import SqliteStore
from tests.sqlite_store_helpers import sqlite_store, wal_frames

store = sqlite_store

# 100 KiB of JSON: 25 pages of 4 KiB wherever it is kept.
LONG: dict[str, Any] = {"text": "x" * 100_000}


def _task(config: Any) -> TaskRecord:
    return TaskRecord(
        id=new_id(), worker="W", status=Status.QUEUED, config=config, created_at=1.0, queued_at=1.0
    )


def _kept(store: SqliteStore, task_id: str) -> tuple[str, int]:
    """The row's config column and how many task_configs rows the task has."""
    row = store.reader.execute(
        "SELECT t.config, (SELECT count(*) FROM task_configs c WHERE c.seq = t.seq) "
        "FROM tasks t WHERE t.id = ?",
        (task_id,),
    ).fetchone()
    return str(row[0]), int(row[1])


async def test_only_configs_past_the_mark_are_kept_aside(store: SqliteStore) -> None:
    mark = sqlite_tasks.CONFIG_ASIDE
    under = {"t": "x" * (mark - 8)}  # JSON text of exactly CONFIG_ASIDE characters
    over = {"t": "x" * (mark - 7)}
    tasks = await store.submit_many([_task(under), _task(over), _task({"n": 1})])
    lone = await store.submit(_task(over))
    assert _kept(store, tasks[0].id) == ('{"t":"' + "x" * (mark - 8) + '"}', 0)
    assert _kept(store, tasks[1].id) == ("", 1)
    assert _kept(store, tasks[2].id) == ('{"n":1}', 0)
    assert _kept(store, lone.id) == ("", 1)
    assert await store.update_config(lone.id, {"n": 2})
    assert _kept(store, lone.id) == ('{"n":2}', 0)
    assert await store.update_config(lone.id, over)
    assert _kept(store, lone.id) == ("", 1)


async def _frames_of_claim_and_finish(store: SqliteStore) -> int:
    """WAL frames the claim and the end of a task with the LONG config write (each its own
    commit: every commit adds its own frames, far from the store's checkpoint mark)."""
    submitted = await store.submit(_task(LONG))
    before = wal_frames(store.path)
    [claimed] = await store.claim("W", Claim("node", 1e12, 1), 2.0)
    assert await store.finish(claimed.id, "node", 1, Outcome(status=Status.COMPLETED, at=3.0))
    got = await store.get(submitted.id)
    assert got is not None and (got.status, got.config) == (Status.COMPLETED, LONG)
    return wal_frames(store.path) - before


async def test_a_claim_and_an_end_do_not_write_a_long_config_again(store: SqliteStore) -> None:
    frames = await _frames_of_claim_and_finish(store)
    # Two commits of a task's row, its indexes, its status counts, timings and attempt: far
    # fewer pages than the config's 25, which each of them wrote again when it was in the row.
    assert frames < 25, frames


async def test_in_the_row_a_long_config_is_written_again_by_each_move(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the test above guards against, shown: with nothing kept aside, the same claim and
    end write the config's pages twice."""
    monkeypatch.setattr(sqlite_tasks, "CONFIG_ASIDE", 10**9)
    assert await _frames_of_claim_and_finish(store) >= 50


async def test_deleting_tasks_deletes_their_kept_configs(store: SqliteStore) -> None:
    tasks = await store.submit_many([_task(LONG) for _ in range(3)])
    claimed = await store.claim("W", Claim("node", 1e12, 10), 2.0)
    for t in claimed:
        assert await store.finish(t.id, "node", 1, Outcome(status=Status.COMPLETED, at=3.0))
    assert await store.prune_finished(10.0, None, 10) == 3
    assert [await store.get(t.id) for t in tasks] == [None] * 3
    assert store.reader.execute("SELECT count(*) FROM task_configs").fetchone()[0] == 0
