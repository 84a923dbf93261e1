"""What the tests of the SQLite store alone share: the fixture of an open store on temp data,
closed after the test (a test module takes it by name: ``store = sqlite_store``), and a count of
the writer's batches."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tasky.store.sqlite import SqliteStore


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "tasky.db")
    await s.open()
    yield s
    await s.close()


def batch_sizes(store: SqliteStore) -> list[int]:
    """The sizes of the batches the store's writer runs from now on, each one transaction."""
    sizes: list[int] = []
    run_batch = store._run_batch

    def counting(conn: sqlite3.Connection, batch: list[object]) -> None:
        sizes.append(len(batch))
        run_batch(conn, batch)  # type: ignore[arg-type]

    store._run_batch = counting  # type: ignore[method-assign]
    return sizes
