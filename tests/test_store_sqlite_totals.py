"""The SQLite writer gathers the timing aggregates of ended attempts for its commit: whatever
way the attempts are batched, replayed or refused, the committed aggregates are those that
one update per attempt gives."""

from __future__ import annotations

import asyncio
import math
import sqlite3
from pathlib import Path

from tasky.ids import new_id
from tasky.states import Status
from tasky.store import sqlite_moves as moves
from tasky.store.records import Claim, Outcome, TaskRecord, WorkerStats
from tasky.store.sqlite import SqliteStore

OWNER = "node-a"
# (worker, queued at, run seconds, outcome): several workers, minutes, buckets and outcomes.
PLAN = [
    ("A", 1000.0, 0.001, Status.COMPLETED),
    ("A", 1010.0, 2.5, Status.FAILED),
    ("A", 1020.0, 70.0, Status.COMPLETED),
    ("B", 1005.0, 0.3, Status.CANCELED),
    ("B", 1100.0, 12.0, Status.COMPLETED),
]
CLAIMED_AT = 1200.0


async def _claimed(store: SqliteStore) -> list[TaskRecord]:
    """The plan's tasks, each claimed at CLAIMED_AT (in plan order)."""
    records = [
        TaskRecord(new_id(), worker, Status.QUEUED, {}, queued, queued_at=queued)
        for worker, queued, _, _ in PLAN
    ]
    await store.submit_many(records)
    claimed: dict[str, TaskRecord] = {}
    for worker in ("A", "B"):
        for record in await store.claim(worker, Claim(OWNER, 9e9, 10), CLAIMED_AT):
            claimed[record.id] = record
    return [claimed[r.id] for r in records]


def _outcome(index: int) -> Outcome:
    _, _, run, status = PLAN[index]
    return Outcome(status, CLAIMED_AT + run)


async def _aggregates(store: SqliteStore) -> list[tuple[WorkerStats, list[tuple[int, str, int]]]]:
    return [
        (await store.worker_stats(w), await store.finished_per_minute(w, 0)) for w in ("A", "B")
    ]


def _same(left: list[tuple[WorkerStats, list[tuple[int, str, int]]]], right: object) -> None:
    assert isinstance(right, list)
    for (a, a_minutes), (b, b_minutes) in zip(left, right, strict=True):
        assert (a.finished, a.wait_count, a.run_time_hist) == (
            b.finished,
            b.wait_count,
            b.run_time_hist,
        )
        assert math.isclose(a.run_time_sum, b.run_time_sum)
        assert math.isclose(a.wait_sum, b.wait_sum)
        assert a_minutes == b_minutes


async def test_batched_replayed_and_refused_attempts_add_up_as_one_by_one(tmp_path: Path) -> None:
    one_by_one = SqliteStore(tmp_path / "one.db")
    await one_by_one.open()
    try:
        for index, record in enumerate(await _claimed(one_by_one)):
            assert await one_by_one.finish(record.id, OWNER, 1, _outcome(index))
        expected = await _aggregates(one_by_one)
    finally:
        await one_by_one.close()
    assert expected[0][0].finished == 3
    assert sum(expected[0][0].run_time_hist.values()) == 3

    store = SqliteStore(tmp_path / "batched.db")
    await store.open()
    try:
        records = await _claimed(store)

        def finish_then_fail(conn: sqlite3.Connection) -> None:
            # An operation that ends an attempt and then fails: all of it is undone, the
            # attempt's share of the aggregates too.
            assert moves.finish(records[4].id, OWNER, 1, _outcome(0))(conn)
            raise RuntimeError("refused")

        async def refused() -> None:  # a coroutine, so it joins the batch after the finishes
            await store.write(finish_then_fail)

        # One batch: the failing operation undoes it whole, and it is replayed op by op.
        results = await asyncio.gather(
            *(store.finish(r.id, OWNER, 1, _outcome(i)) for i, r in enumerate(records[:4])),
            refused(),
            return_exceptions=True,
        )
        assert results[:4] == [True] * 4
        assert isinstance(results[4], RuntimeError)
        assert await store.finish(records[4].id, OWNER, 1, _outcome(4))  # a batch of its own
        _same(expected, await _aggregates(store))
    finally:
        await store.close()


async def test_aggregates_are_committed_with_their_attempts(tmp_path: Path) -> None:
    """Nothing stays gathered after a commit: a second store opened on the file reads them."""
    path = tmp_path / "tasky.db"
    store = SqliteStore(path)
    await store.open()
    try:
        records = await _claimed(store)
        await asyncio.gather(
            *(store.finish(r.id, OWNER, 1, _outcome(i)) for i, r in enumerate(records))
        )
        assert store._writer_conn is not None
        assert store._writer_conn.totals.mark() == 0
        expected = await _aggregates(store)
    finally:
        await store.close()
    reopened = SqliteStore(path)
    await reopened.open()
    try:
        _same(expected, await _aggregates(reopened))
        assert (await reopened.worker_stats("A")).finished == 3
    finally:
        await reopened.close()
