"""Storage: the Store protocol and its implementations."""

from __future__ import annotations

from pathlib import Path

from tasky.store.base import Store, StoreLocked
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
    "IdempotencyRecord",
    "LogLine",
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
    """``sqlite:///path/to/tasky.db`` or a plain path."""
    if url.startswith("sqlite:///"):
        return SqliteStore(url.removeprefix("sqlite:///"))
    if "://" in url:
        raise ValueError(f"unsupported store URL: {url}")
    return SqliteStore(Path(url))
