"""Held (trailing) writes of the SQLite store under uvloop, the loop ``tasky serve`` runs on.

uvloop's ``call_at`` turns a delay that rounds to 0 ms into ``call_soon``, whose ``Handle`` has
no ``when()``. The store once asked the held write's timer for ``when()``: under load (a loop
iteration long enough for a task end's 1 ms wait to round to nothing) every later held write
raised AttributeError, so ends of tasks were committed but their callers told they failed."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import uvloop

from tasky.store.sqlite import SqliteStore


def _count(conn: sqlite3.Connection) -> int:
    value: int = conn.execute("SELECT count(*) FROM tasks").fetchone()[0]
    return value


async def _held_writes(path: Path) -> list[int]:
    store = SqliteStore(path)
    await store.open()
    try:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, uvloop.Loop)
        # 0.1 ms rounds to 0 ms: uvloop hands back a plain Handle for the first one's timer.
        first = store._submit_trailing(_count, 0.0001)
        second = store._submit_trailing(_count, 0.0001)
        later = store._submit_trailing(_count, 0.05)  # a later due time keeps the sooner timer
        return list(await asyncio.wait_for(asyncio.gather(first, second, later), 5))
    finally:
        await store.close()


def test_held_writes_under_uvloop_are_committed_and_answered(tmp_path: Path) -> None:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert runner.run(_held_writes(tmp_path / "tasky.db")) == [0, 0, 0]
