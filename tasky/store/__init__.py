"""Storage: the Store protocol and its implementations."""

from __future__ import annotations

from pathlib import Path

from tasky.store.base import DuplicateId, Store, StoreLocked
from tasky.store.chain_base import ChainStore
from tasky.store.memory import MemoryStore
from tasky.store.records import (
    AttemptRecord,
    AuditPage,
    AuditRecord,
    CallbackAttempt,
    CallbackRecord,
    IdempotencyRecord,
    LogLine,
    ScheduleRecord,
    TaskPage,
    TaskRecord,
    TokenRecord,
    WorkerStats,
)
from tasky.store.sqlite import SqliteStore

__all__ = [
    "AttemptRecord",
    "AuditPage",
    "AuditRecord",
    "CallbackAttempt",
    "CallbackRecord",
    "ChainStore",
    "DuplicateId",
    "IdempotencyRecord",
    "LogLine",
    "MemoryStore",
    "ScheduleRecord",
    "SqliteStore",
    "Store",
    "StoreLocked",
    "TaskPage",
    "TaskRecord",
    "TokenRecord",
    "WorkerStats",
    "create_store",
]


def create_store(url: str) -> Store:
    """``sqlite:///path/to/tasky.db`` or a plain path; ``memory:`` for tests (see
    tasky.store.memory: nothing is kept beyond the store object)."""
    if url == "memory:":
        return MemoryStore()
    if url.startswith("sqlite:///"):
        return SqliteStore(url.removeprefix("sqlite:///"))
    if "://" in url:
        raise ValueError(f"unsupported store URL: {url}")
    return SqliteStore(Path(url))
