"""What the tests of the SQLite store alone share: the fixture of an open store on temp data,
closed after the test (a test module takes it by name: ``store = sqlite_store``), a count of
the writer's batches and a trace of the writer's statements."""

from __future__ import annotations

import sqlite3
import struct
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tasky.store.sqlite import SqliteStore
from tasky.store.wal_space import FRAME_HEADER_BYTES, WAL_HEADER_BYTES, wal_bytes


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "tasky.db")
    await s.open()
    yield s
    await s.close()


def wal_frames(path: str | Path) -> int:
    """The frames of the WAL's current generation: those after its header that carry its salt
    (the store writes the file's whole working length as zeros up front, so its length no longer
    tells; zeros and frames of a generation before a checkpoint never carry the salt)."""
    data = Path(f"{path}-wal").read_bytes()
    if len(data) < WAL_HEADER_BYTES:
        return 0
    page_size = struct.unpack(">I", data[8:12])[0]
    salts = data[16:24]
    frames = 0
    offset = WAL_HEADER_BYTES  # where frame number ``frames`` begins (wal_bytes(frames, ...))
    while offset + FRAME_HEADER_BYTES + page_size <= len(data) and (
        data[offset + 8 : offset + 16] == salts
    ):
        frames += 1
        offset = wal_bytes(frames, page_size)
    return frames


def batch_sizes(store: SqliteStore) -> list[int]:
    """The sizes of the batches the store's writer runs from now on, each one transaction."""
    sizes: list[int] = []
    run_batch = store._run_batch

    def counting(conn: sqlite3.Connection, batch: list[object]) -> None:
        sizes.append(len(batch))
        run_batch(conn, batch)  # type: ignore[arg-type]

    store._run_batch = counting  # type: ignore[method-assign]
    return sizes


def _set_trace(store: SqliteStore, callback: Callable[[str], object] | None) -> None:
    """Set the writer connection's trace callback while the writer thread is off it.

    SQLite calls the callback inside a statement's step, holding the connection's mutex and
    waiting for the GIL; setting a callback takes that mutex while holding the GIL. Done while
    the writer thread runs a statement (it begins the next transaction on its own after each
    group), the two threads wait for each other forever, where no test timeout can reach.
    """
    conn = store._writer_conn
    assert conn is not None
    with store._conn_lock:  # held by the writer thread whenever it uses the connection
        conn.set_trace_callback(callback)


@contextmanager
def traced(store: SqliteStore) -> Iterator[list[str]]:
    """The statements the writer runs meanwhile (trigger bodies show as ``-- TRIGGER``)."""
    statements: list[str] = []
    _set_trace(store, statements.append)
    try:
        yield statements
    finally:
        _set_trace(store, None)
