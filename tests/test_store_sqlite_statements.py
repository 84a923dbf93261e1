"""How many statements the SQLite writer runs for work on many tasks: per-statement costs (a
trigger's program, above all) made per-row statements the writer's largest cost, so a claim
and a batch insert touch their rows in one statement each, whatever their size."""

from __future__ import annotations

from tasky.ids import new_id
from tasky.states import Status
from tasky.store.records import Claim, TaskRecord
from tasky.store.sqlite import SqliteStore
from tests.sqlite_store_helpers import sqlite_store, traced

store = sqlite_store


def task(worker: str = "W") -> TaskRecord:
    return TaskRecord(new_id(), worker, Status.QUEUED, {}, 1000.0, queued_at=1000.0)


async def test_a_claim_starts_its_tasks_in_one_statement(store: SqliteStore) -> None:
    await store.submit_many([task() for _ in range(50)])
    with traced(store) as statements:
        claimed = await store.claim("W", Claim("node-a", 5000.0, 40), 2000.0)
    assert len(claimed) == 40
    # (SQLite traces a statement again as each trigger program of it starts: distinct texts.)
    updates = {s for s in statements if s.startswith("UPDATE tasks")}
    assert len(updates) == 1, updates
    by_status = (await store.worker_stats("W")).by_status
    assert (by_status["Running"], by_status["Queued"]) == (40, 10)
    # Every claimed task is stored as the claim returned it.
    for record in claimed:
        assert await store.get(record.id) == record


async def test_a_batch_insert_counts_its_rows_per_worker_and_status(store: SqliteStore) -> None:
    tasks = [task("A") for _ in range(30)] + [task("B") for _ in range(20)]
    with traced(store) as statements:
        await store.submit_many(tasks, Claim("node-a", 5000.0, 5))
    counted = [s for s in statements if "status_counts" in s]
    # A: 5 Running, 25 Queued; B: 5 Running, 15 Queued: four groups, no per-row trigger.
    assert len(counted) == 4, counted
    assert not any("TRIGGER count_insert" in s for s in statements)
