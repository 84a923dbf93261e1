"""The benchmark's measure of the disk's floor under a lone submit (bench/floor.py): it commits
the way the store's writer does, on a real file, and leaves nothing behind."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import floor  # noqa: E402
from tasky.store.sqlite import connect_writer  # noqa: E402


def test_each_commit_is_timed_and_the_files_are_removed(tmp_path: Path) -> None:
    seconds = floor.commit_latencies(tmp_path, 25)
    assert len(seconds) == 25
    assert all(s > 0 for s in seconds)
    assert list(tmp_path.iterdir()) == []
    assert floor.commit_p50_ms(tmp_path, 5) > 0


def test_the_floor_commits_as_durably_as_the_store_writer(tmp_path: Path) -> None:
    """The floor is only a floor if its commits wait for the disk as a submit's do: the writer's
    own connection setup, WAL with synchronous=FULL (2)."""
    conn = connect_writer(str(tmp_path / "probe.db"))
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    finally:
        conn.close()


def test_every_timed_commit_left_its_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each timed transaction really wrote: the rows are there before the file is removed."""
    counted: list[int] = []
    real_connect = floor.connect_writer

    def counting(path: str) -> sqlite3.Connection:
        conn = real_connect(path)
        original_close = conn.close

        def close() -> None:
            counted.append(conn.execute("SELECT count(*) FROM floor").fetchone()[0])
            original_close()

        conn.close = close  # type: ignore[method-assign]
        return conn

    monkeypatch.setattr(floor, "connect_writer", counting)
    floor.commit_latencies(tmp_path, 7)
    assert counted == [7]


def test_the_submit_commit_writes_one_queued_task_each_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The submit's own floor inserts through the store's insert: one Queued task and its status
    count per timed commit, in the store's schema."""
    counted: list[tuple[int, int]] = []
    real_connect = floor.connect_writer

    def counting(path: str) -> sqlite3.Connection:
        conn = real_connect(path)
        original_close = conn.close

        def close() -> None:
            tasks = conn.execute("SELECT count(*) FROM tasks WHERE status = 'Queued'").fetchone()
            queued = conn.execute(
                "SELECT n FROM status_counts WHERE worker = 'Blocker' AND status = 'Queued'"
            ).fetchone()
            counted.append((tasks[0], queued[0]))
            original_close()

        conn.close = close  # type: ignore[method-assign]
        return conn

    monkeypatch.setattr(floor, "connect_writer", counting)
    seconds = floor.submit_commit_latencies(tmp_path, 6)
    assert len(seconds) == 6 and all(s > 0 for s in seconds)
    assert counted == [(6, 6)]
    assert list(tmp_path.iterdir()) == []


def test_the_timed_commits_write_over_the_wal_instead_of_lengthening_it(tmp_path: Path) -> None:
    """A commit that makes the WAL file longer waits for the file's new length too (about twice
    the floor on the benchmark machine); a running server's commits write over a WAL grown long
    before. After _steady, commits write from the WAL's start and its length does not move."""
    path = tmp_path / "steady.db"
    conn = connect_writer(str(path))
    try:
        conn.execute("CREATE TABLE t (x TEXT)")
        floor._steady(conn)
        wal = Path(f"{path}-wal")
        grown = wal.stat().st_size
        for n in range(300):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t VALUES (?)", (f"{n:032x}",))
            conn.execute("COMMIT")
        assert wal.stat().st_size == grown
        # And they were written, from the start of the WAL (its frames are the newest again).
        assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 300
    finally:
        conn.close()
