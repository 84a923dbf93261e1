"""Seeding a data directory through the store (fast, no HTTP): finished history for scale tests."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from pathlib import Path

from tasky.ids import new_id
from tasky.states import Status
from tasky.store.records import TaskRecord
from tasky.store.sqlite import SqliteStore

_CHUNK = 100_000


def create_schema(path: Path) -> None:
    """A database at ``path`` with the store's schema, as the store makes it on open."""
    asyncio.run(_open_and_close(path))


async def _open_and_close(path: Path) -> None:
    store = SqliteStore(path)
    await store.open()
    await store.close()


def _records(n: int, ids: list[str], keep_every: int, age: float) -> Iterator[TaskRecord]:
    now = time.time() - age - n * 0.001
    rng = random.Random(6)
    for i in range(n):
        task_id = new_id()
        if i % keep_every == 0:
            ids.append(task_id)
        roll = rng.random()
        status = (
            Status.COMPLETED if roll < 0.9 else Status.FAILED if roll < 0.95 else Status.CANCELED
        )
        created = now + i * 0.001
        yield TaskRecord(
            id=task_id,
            worker="Noop",
            status=status,
            config={},
            created_at=created,
            queued_at=created,
            started_at=created + 0.0005,
            finished_at=created + 0.001,
        )


def seed_finished(
    data_dir: Path, n: int, sample: int = 10_000, age: float = 0.0
) -> tuple[float, list[str]]:
    """Insert ``n`` finished Noop tasks, the newest ``age`` seconds old; returns (seconds, a
    sample of their ids)."""
    path = data_dir / "tasky.db"
    # Private, as the server makes its own data directory (it warns about one open to others).
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    create_schema(path)
    store = SqliteStore(path)
    ids: list[str] = []
    keep_every = max(n // sample, 1)
    start = time.monotonic()
    stream = _records(n, ids, keep_every, age)
    left = n
    while left > 0:
        chunk = min(_CHUNK, left)
        store.insert_many_now(next(stream) for _ in range(chunk))
        left -= chunk
    return time.monotonic() - start, ids
