"""The stores the contract runs on: one factory each, with the capabilities that differ.

Adding a store means adding one factory here. A shared test never asks which store it runs on;
it asks for a capability (a fixture in conftest.py selects the factories that have it).
"""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

from tasky.store import DuplicateId, SqliteStore, Store, create_store
from tests.pg import empty_schema, shared_schema


class StoreFactory(ABC):
    """Makes stores on one place of data (a scratch directory for file-based stores)."""

    # Data outlives the store object: a store opened again on the same place sees it.
    durable: ClassVar[bool]
    # A second store opened on the same place while the first is open is refused (StoreLocked).
    exclusive_lock: ClassVar[bool]
    # What a write raises when it names a task or chain id that is taken.
    duplicate_error: ClassVar[type[Exception]]
    # Many stores (nodes) open on the same place at once hear from each other through it.
    shared: ClassVar[bool] = False

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch

    @abstractmethod
    async def reset(self) -> None:
        """Start from an empty store (before every test; a shared server would truncate)."""

    @abstractmethod
    async def open(self) -> Store:
        """A new store object on this place of data, opened."""


class MemoryFactory(StoreFactory):
    durable = False
    exclusive_lock = False
    duplicate_error = DuplicateId

    async def reset(self) -> None:
        """Nothing to do: every MemoryStore starts empty."""

    async def open(self) -> Store:
        store = create_store("memory:")
        await store.open()
        return store


class SqliteFactory(StoreFactory):
    durable = True
    exclusive_lock = True
    duplicate_error = sqlite3.IntegrityError

    @property
    def path(self) -> Path:
        return self.scratch / "tasky.db"

    async def reset(self) -> None:
        for suffix in ("", "-wal", "-shm", ".lock"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    async def open(self) -> Store:
        store = SqliteStore(self.path)
        await store.open()
        return store


class PostgresFactory(StoreFactory):
    """One schema of the test server per test process (tests/pg.py), emptied before each test:
    creating a schema per test would cost more than the tests themselves."""

    durable = True
    exclusive_lock = False  # many nodes share one database
    duplicate_error = DuplicateId
    shared = True

    @property
    def url(self) -> str:
        return shared_schema()

    async def reset(self) -> None:
        await empty_schema(self.url)

    async def open(self) -> Store:
        store = create_store(self.url)
        await store.open()
        return store


FACTORIES: dict[str, type[StoreFactory]] = {
    "memory": MemoryFactory,
    "postgres": PostgresFactory,
    "sqlite": SqliteFactory,
}
