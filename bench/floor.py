"""The disk's floor under a lone submit: a durable one-row commit, made the way Tasky's writer
commits (its own connection setup: WAL, synchronous=FULL), in the directory the server writes to.

A lone submit cannot answer before its commit has reached the disk, so its latency is this floor
plus the request's own work. The floor differs several-fold between machines and between days on
one shared machine (0.10 ms and 0.38 ms p50 were both seen here), so the lone submit is reported
next to the floor measured in the same run, and as a ratio to it.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from tasky.store.sqlite import connect_writer

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
