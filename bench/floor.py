"""The disk's floor under a lone submit: a durable one-row commit, made the way Tasky's writer
commits (its own connection setup: WAL, synchronous=FULL), in the directory the server writes to.

A lone submit cannot answer before its commit has reached the disk, so its latency is this floor
plus the request's own work. The floor differs several-fold between machines and between days on
one shared machine (0.10 ms and 0.38 ms p50 were both seen here), so the lone submit is reported
next to the floor measured in the same run, and as a ratio to it.

A submit's own commit writes more than that one row: the task's row, an entry in each of the
tasks table's indexes and its worker's status count, seven pages of the WAL where the floor's row
writes one or two. :func:`submit_commit_latencies` times that commit alone (the store's own
insert, no HTTP and no event loop), so the lone submit can also be set against what its own
write costs on this disk.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path

from tasky.ids import new_id
from tasky.states import Status
from tasky.store.records import TaskRecord
from tasky.store.sqlite import SqliteStore, connect_writer
from tasky.store.sqlite_tasks import insert_one

_TABLE = "CREATE TABLE IF NOT EXISTS floor (seq INTEGER PRIMARY KEY, id TEXT NOT NULL)"
_ROW = "INSERT INTO floor (id) VALUES (?)"


def commit_latencies(directory: Path, commits: int) -> list[float]:
    """Seconds each of ``commits`` one-row transactions took, BEGIN IMMEDIATE to COMMIT."""
    path = directory / "floor.db"
    conn = connect_writer(str(path))
    try:
        conn.execute(_TABLE)
        seconds: list[float] = []
        for n in range(commits):
            began = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(_ROW, (f"{n:032x}",))
            conn.execute("COMMIT")
            seconds.append(time.perf_counter() - began)
        return seconds
    finally:
        conn.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


def commit_p50_ms(directory: Path, commits: int) -> float:
    """The median durable one-row commit in ``directory``, in milliseconds."""
    return statistics.median(commit_latencies(directory, commits)) * 1000


def submit_commit_latencies(directory: Path, commits: int) -> list[float]:
    """Seconds each of ``commits`` transactions took, BEGIN IMMEDIATE to COMMIT, each writing
    what a lone submit to a busy worker writes: one Queued task, by the store's own insert, into
    a database with the store's schema."""
    path = directory / "submit-floor.db"
    asyncio.run(_create_schema(path))
    conn = connect_writer(str(path))
    try:
        seconds: list[float] = []
        for _ in range(commits):
            now = time.time()
            task = TaskRecord(
                id=new_id(),
                worker="Blocker",
                status=Status.QUEUED,
                config={},
                created_at=now,
                queued_at=now,
            )
            began = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            insert_one(conn, task, "{}", None)
            conn.execute("COMMIT")
            seconds.append(time.perf_counter() - began)
        return seconds
    finally:
        conn.close()
        for suffix in ("", "-wal", "-shm", ".lock"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


def submit_commit_p50_ms(directory: Path, commits: int) -> float:
    """The median durable commit of one submitted task in ``directory``, in milliseconds."""
    return statistics.median(submit_commit_latencies(directory, commits)) * 1000


async def _create_schema(path: Path) -> None:
    store = SqliteStore(path)
    await store.open()
    await store.close()
