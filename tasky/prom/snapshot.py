"""One scrape's numbers, read in one go before any text is written.

The store's reads are async (a future PostgreSQL store awaits the network), while
prometheus_client collectors are plain functions; so the handler awaits this snapshot first and
the collector only formats it. Everything here is a count the store or the engine already keeps:
a scrape reads a few index rows per worker and never scans the tasks table.
"""

from __future__ import annotations

from dataclasses import dataclass

from tasky import clock
from tasky.buckets import BucketSnapshot
from tasky.engine import Engine
from tasky.store.records import CommitStats, WorkerStats


@dataclass(frozen=True, slots=True)
class WorkerSnapshot:
    name: str
    max_tasks: int
    running: int
    stats: WorkerStats
    # Seconds the longest-waiting Queued task has waited; 0 when none waits.
    oldest_queued_age: float
    submitted: int
    outcomes: dict[str, int]
    queue_wait: BucketSnapshot


@dataclass(frozen=True, slots=True)
class Snapshot:
    workers: list[WorkerSnapshot]
    commits: CommitStats
    stream_clients: int


async def take(engine: Engine, stream_clients: int) -> Snapshot:
    now = clock.now()
    workers = []
    for worker in engine.registry:
        queued_at = await engine.store.oldest_queued_at(worker.name)
        counters = engine.counters(worker.name)
        workers.append(
            WorkerSnapshot(
                name=worker.name,
                max_tasks=worker.max_tasks,
                running=engine.running_count(worker.name),
                stats=await engine.store.worker_stats(worker.name),
                oldest_queued_age=0.0 if queued_at is None else max(now - queued_at, 0.0),
                submitted=counters.submitted,
                outcomes=dict(counters.outcomes),
                queue_wait=counters.queue_wait.snapshot(),
            )
        )
    return Snapshot(workers, engine.store.commit_stats(), stream_clients)
