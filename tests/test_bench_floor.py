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
