"""Worker statistics in the PostgreSQL store: appended changes, folded into totals now and then.

Counting in place would make every submit, claim and finish of a worker update the same rows,
and each transaction would wait for the previous one's commit (across every node) before its
own. Instead a trigger appends each status change to ``status_changes`` and every ended attempt
appends a row to ``ended_attempts``; inserts never wait for each other. Readers add the totals
and the appended rows up in one snapshot; a read that finds many appended rows folds them into
the totals (one transaction: the rows move, so nothing is counted twice or lost). Deleting a
task (retention) touches neither, so statistics keep counting pruned tasks.
"""

from __future__ import annotations

from collections import Counter

from tasky.store.histogram import bucket_of
from tasky.store.pg_database import Conn, PgDatabase
from tasky.store.records import WorkerStats

# Appended rows of one worker a read adds up before it folds them into the totals.
FOLD_AT = 1000

_STATUS_COUNTS = """
SELECT status, sum(n)::bigint, count(*) FILTER (WHERE NOT folded) FROM (
    SELECT status, n, true AS folded FROM status_counts WHERE worker = %(worker)s
    UNION ALL SELECT status, delta, false FROM status_changes WHERE worker = %(worker)s
) counts GROUP BY status
"""
_TIMING = "SELECT finished, run_time_sum, wait_sum, wait_count FROM worker_timing WHERE worker = %s"
_HISTOGRAM = "SELECT bucket, n FROM run_time_hist WHERE worker = %s"
_ENDED = "SELECT run_time, wait FROM ended_attempts WHERE worker = %s"
_PER_MINUTE = """
SELECT minute, status, sum(n)::bigint FROM (
    SELECT minute, status, n FROM finished_per_minute
    WHERE worker = %(worker)s AND minute >= %(since)s
    UNION ALL SELECT minute, status, 1 FROM ended_attempts
    WHERE worker = %(worker)s AND minute >= %(since)s
) ended GROUP BY minute, status ORDER BY minute, status
"""


async def worker_stats(db: PgDatabase, worker: str) -> WorkerStats:
    async def read(conn: Conn) -> tuple[WorkerStats, int]:
        stats = WorkerStats(worker=worker)
        async with conn.transaction():
            # One snapshot for the four reads: a fold committing in between would otherwise
            # make rows count twice or not at all.
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            unfolded = 0
            for status, n, appended in await (
                await conn.execute(_STATUS_COUNTS, {"worker": worker})
            ).fetchall():
                stats.by_status[status] = n
                unfolded += appended
            timing = await (await conn.execute(_TIMING, (worker,))).fetchone()
            if timing is not None:
                stats.finished, stats.run_time_sum, stats.wait_sum, stats.wait_count = timing
            stats.run_time_hist = {
                bucket: n
                for bucket, n in await (await conn.execute(_HISTOGRAM, (worker,))).fetchall()
            }
            ended = await (await conn.execute(_ENDED, (worker,))).fetchall()
        for run_time, wait in ended:
            stats.finished += 1
            stats.run_time_sum += run_time
            if wait is not None:
                stats.wait_sum += wait
                stats.wait_count += 1
            bucket = bucket_of(run_time)
            stats.run_time_hist[bucket] = stats.run_time_hist.get(bucket, 0) + 1
        return stats, unfolded + len(ended)

    stats, unfolded = await db.with_connection(read)
    if unfolded > FOLD_AT:
        await fold(db, worker)
    return stats


async def finished_per_minute(
    db: PgDatabase, worker: str, since_minute: int
) -> list[tuple[int, str, int]]:
    rows = await db.fetch_all(_PER_MINUTE, {"worker": worker, "since": since_minute})
    return [(r[0], r[1], r[2]) for r in rows]


async def fold(db: PgDatabase, worker: str) -> None:
    """Move the worker's appended rows into its totals (skipped while another node folds)."""
    await db.write(lambda conn: _fold(conn, worker), transaction=True)


async def _fold(conn: Conn, worker: str) -> None:
    locked = await (
        await conn.execute(
            "SELECT pg_try_advisory_xact_lock(hashtext('tasky.fold:' || %s))", (worker,)
        )
    ).fetchone()
    if locked is None or not locked[0]:
        return
    await conn.execute(
        "WITH moved AS (DELETE FROM status_changes WHERE worker = %(worker)s "
        "RETURNING status, delta) "
        "INSERT INTO status_counts (worker, status, n) "
        "SELECT %(worker)s, status, sum(delta) FROM moved GROUP BY status "
        "ON CONFLICT (worker, status) DO UPDATE SET n = status_counts.n + excluded.n",
        {"worker": worker},
    )
    ended = await (
        await conn.execute(
            "DELETE FROM ended_attempts WHERE worker = %s RETURNING status, minute, run_time, wait",
            (worker,),
        )
    ).fetchall()
    if not ended:
        return
    waits = [wait for _, _, _, wait in ended if wait is not None]
    await conn.execute(
        "INSERT INTO worker_timing (worker, finished, run_time_sum, wait_sum, wait_count) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (worker) DO UPDATE SET "
        "finished = worker_timing.finished + excluded.finished, "
        "run_time_sum = worker_timing.run_time_sum + excluded.run_time_sum, "
        "wait_sum = worker_timing.wait_sum + excluded.wait_sum, "
        "wait_count = worker_timing.wait_count + excluded.wait_count",
        (worker, len(ended), sum(row[2] for row in ended), sum(waits), len(waits)),
    )
    buckets = Counter(bucket_of(row[2]) for row in ended)
    minutes = Counter((row[1], row[0]) for row in ended)
    async with conn.cursor() as cursor:
        await cursor.executemany(
            "INSERT INTO run_time_hist (worker, bucket, n) VALUES (%s, %s, %s) "
            "ON CONFLICT (worker, bucket) DO UPDATE SET n = run_time_hist.n + excluded.n",
            [(worker, bucket, n) for bucket, n in sorted(buckets.items())],
        )
        await cursor.executemany(
            "INSERT INTO finished_per_minute (worker, minute, status, n) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (worker, minute, status) DO UPDATE SET "
            "n = finished_per_minute.n + excluded.n",
            [(worker, minute, status, n) for (minute, status), n in sorted(minutes.items())],
        )
