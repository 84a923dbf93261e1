"""The disk's floor under a lone submit: a durable one-row commit, made the way Tasky's writer
commits (its own connection setup: WAL, synchronous=FULL), in the directory the server writes to.

A lone submit cannot answer before its commit has reached the disk, so its latency is this floor
plus the request's own work. The floor differs several-fold between machines and between days on
one shared machine (0.10 ms and 0.38 ms p50 were both seen here), so the lone submit is reported
next to the floor measured in the same run, and as a ratio to it.

Both are measured with the WAL in the state a running server's is in: already grown to its
checkpoint size and written over from its start again (:func:`_steady`). A commit that makes the
WAL file longer, as every commit of a new database does until the first checkpoint, took about
twice as long here (0.20-0.31 ms p50 against 0.11-0.16 for the one-row floor): the file's new
length goes to the disk with it. A server is past that after its first 40 MB of WAL; the lone
submits of ``make bench`` come after far more.

A submit's own commit writes more than that one row: the task's row, an entry in each of the
tasks table's indexes and its worker's status count, seven pages of the WAL where the floor's row
writes one or two. :func:`submit_commit_latencies` times that commit alone (the store's own
insert, no HTTP and no event loop), so the lone submit can also be set against what its own
write costs on this disk.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from bench import seed
from tasky.ids import new_id
from tasky.states import Status
from tasky.store.records import TaskRecord
from tasky.store.sqlite import WAL_AUTOCHECKPOINT, WriterConnection, connect_writer
from tasky.store.sqlite_tasks import insert_one

_TABLE = "CREATE TABLE IF NOT EXISTS floor (seq INTEGER PRIMARY KEY, id TEXT NOT NULL)"
_ROW = "INSERT INTO floor (id) VALUES (?)"


def commit_latencies(directory: Path, commits: int) -> list[float]:
    """Seconds each of ``commits`` one-row transactions took, BEGIN IMMEDIATE to COMMIT."""
    path = directory / "floor.db"
    conn = connect_writer(str(path))
    try:
        conn.execute(_TABLE)
        _steady(conn)
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
    seed.create_schema(path)
    conn = connect_writer(str(path))
    try:
        _steady(conn)
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


def _steady(conn: WriterConnection) -> None:
    """Grow the WAL to the server's checkpoint size, then checkpoint it and have the next commit
    write it over from its start (``RESTART``), as a running server's commits do: the measured
    commits then never make the file longer. The padding goes to the database file, which is
    thrown away after the measure."""
    page: int = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.execute("CREATE TABLE padding (b BLOB)")
    conn.execute("BEGIN IMMEDIATE")
    # A blob a little smaller than a page: one row per page, so the WAL grows page by page.
    conn.executemany(
        "INSERT INTO padding VALUES (zeroblob(?))", [(page - 600,)] * (WAL_AUTOCHECKPOINT + 500)
    )
    conn.execute("COMMIT")
    conn.execute("DROP TABLE padding")
    conn.execute("PRAGMA wal_checkpoint(RESTART)")
