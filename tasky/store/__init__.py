"""Storage: the Store protocol and its implementations."""

from __future__ import annotations

from pathlib import Path

from tasky.settings import POSTGRES_SCHEMES
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
    NodeRecord,
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
    "NodeRecord",
    "ScheduleRecord",
    "SqliteStore",
    "Store",
    "StoreLocked",
    "TaskPage",
    "TaskRecord",
    "TokenRecord",
    "WorkerStats",
    "create_store",
    "prepare_store",
]


def create_store(url: str, *, brief: bool = False) -> Store:
    """``postgresql://USER@HOST:PORT/DB`` (many nodes on one database), or
    ``sqlite:///path/to/tasky.db`` or a plain path (the embedded default); ``memory:`` for
    tests (see tasky.store.memory: nothing is kept beyond the store object). ``brief``: the
    store is opened for a moment (see :class:`SqliteStore`)."""
    if url == "memory:":
        return MemoryStore()
    if url.startswith(POSTGRES_SCHEMES):
        try:
            from tasky.store.postgres import PostgresStore
        except ImportError as exc:
            raise ImportError(
                f"the PostgreSQL store needs psycopg and psycopg-pool ({exc}): "
                "pip install 'tasky[postgres]'"
            ) from None
        return PostgresStore(url)
    if url.startswith("sqlite:///"):
        return SqliteStore(url.removeprefix("sqlite:///"), brief=brief)
    if "://" in url:
        raise ValueError(f"unsupported store URL: {url.split('://')[0]}://...")
    return SqliteStore(Path(url), brief=brief)


def prepare_store(store: Store) -> int:
    """Before the server listens: make the store usable by this server, failing with a plain
    message if it is not (SQLite: take its lock file; PostgreSQL: reach the database and bring
    its schema up to date), and return how many API tokens it stores."""
    if isinstance(store, SqliteStore):
        store.lock()
        return store.count_tokens_now()
    prepare_now = getattr(store, "prepare_now", None)  # PostgresStore, imported only if used
    if prepare_now is None:
        return 0
    stored: int = prepare_now()
    return stored
