"""One PostgreSQL database (or one schema of it) behind a connection pool, and the helpers every
part of the PostgreSQL store shares: writes with their commit measurements, reads, JSON text.

Connections are in autocommit mode: an operation written as one statement (most of them, with
data-modifying CTEs) is its own transaction and costs one round trip; operations of several
statements open a transaction explicitly (:meth:`PgDatabase.write` with ``transaction=True``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from psycopg import AsyncConnection, errors
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from tasky.buckets import Buckets
from tasky.store.base import DuplicateId
from tasky.store.records import CommitStats
from tasky.store.sql_page import page_query, split_page
from tasky.store.sql_rows import json_text as json_text  # the pg modules import it from here
from tasky.store.sql_rows import json_value as json_value  # the pg modules import it from here
from tasky.store.sqlite import COMMIT_SECONDS_BOUNDS, COMMIT_SIZE_BOUNDS

Conn = AsyncConnection[TupleRow]
Row = tuple[Any, ...]
T = TypeVar("T")

# A transaction PostgreSQL aborted to break a lock cycle (two transactions updating rows in
# different orders) wrote nothing, so it is simply run again.
_RETRIED = (errors.DeadlockDetected, errors.SerializationFailure)
_ATTEMPTS = 5
# PostgreSQL ended the connection's backend before it ran anything sent on it (a restart, or
# pg_terminate_backend, of an idle connection: its goodbye is waiting in the socket): the
# operation did not happen, so it runs again on another connection (the pool drops the dead
# one). Idle connections all go at once, so as many tries as the pool holds, and one more.
_GONE = (errors.AdminShutdown, errors.CrashShutdown, errors.CannotConnectNow)
# Unique constraints whose violation means "this id is taken" (tasky.store.base.DuplicateId).
_ID_CONSTRAINTS = frozenset({"tasks_id_key", "chains_id_key", "chain_steps_pkey", "callbacks_pkey"})


class PgDatabase:
    """The connection pool of one store, opened and closed with it."""

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 2,
        max_size: int = 10,
        configure: Callable[[Conn], Awaitable[None]] | None = None,
    ) -> None:
        self.url = url
        self._pool = AsyncConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            open=False,
            kwargs={"autocommit": True},
            name="tasky",
            configure=configure,
        )
        self._commit_seconds = Buckets(COMMIT_SECONDS_BOUNDS)
        self._commit_size = Buckets(COMMIT_SIZE_BOUNDS)

    async def open(self) -> None:
        await self._pool.open(wait=True)

    async def close(self) -> None:
        await self._pool.close()

    async def write(
        self, work: Callable[[Conn], Awaitable[T]], *, size: int = 1, transaction: bool = False
    ) -> T:
        """Run ``work`` on a pooled connection (in one transaction when ``transaction``; else
        each of its statements commits on its own) and measure the commit; ``size``: how many
        writes of callers it carries."""
        retried = 0
        attempt = 0
        while True:
            attempt += 1
            async with self._connection() as conn:
                began = time.perf_counter()
                try:
                    if transaction:
                        async with conn.transaction():
                            value = await work(conn)
                    else:
                        value = await work(conn)
                except _RETRIED:
                    if attempt >= _ATTEMPTS:
                        raise
                    continue
                except _GONE:
                    retried += 1
                    if retried > self._pool.max_size:
                        raise
                    attempt -= 1
                    continue
                except errors.UniqueViolation as exc:
                    if exc.diag.constraint_name in _ID_CONSTRAINTS:
                        raise DuplicateId(exc.diag.message_detail or str(exc)) from None
                    raise
                self._commit_seconds.observe(time.perf_counter() - began)
                self._commit_size.observe(size)
                return value

    async def execute(self, query: str, params: Sequence[Any] | dict[str, Any] = ()) -> int:
        """One writing statement in its own transaction; returns the rows it changed."""

        async def run(conn: Conn) -> int:
            cursor = await conn.execute(query, params)
            return max(cursor.rowcount, 0)

        return await self.write(run)

    async def fetch_all(self, query: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Row]:
        async def read(conn: Conn) -> list[Row]:
            return await (await conn.execute(query, params)).fetchall()

        return await self.with_connection(read)

    async def fetch_one(
        self, query: str, params: Sequence[Any] | dict[str, Any] = ()
    ) -> Row | None:
        async def read(conn: Conn) -> Row | None:
            return await (await conn.execute(query, params)).fetchone()

        return await self.with_connection(read)

    async def fetch_value(self, query: str, params: Sequence[Any] | dict[str, Any] = ()) -> Any:
        """The first column of the first row (None when there is no row)."""
        row = await self.fetch_one(query, params)
        return None if row is None else row[0]

    async def with_connection(self, work: Callable[[Conn], Awaitable[T]]) -> T:
        """``work`` on a pooled connection, no transaction opened, nothing measured (reads of
        several statements, migrations)."""
        for _ in range(self._pool.max_size):
            try:
                async with self._connection() as conn:
                    return await work(conn)
            except _GONE:
                continue
        async with self._connection() as conn:
            return await work(conn)

    def _connection(self) -> contextlib.AbstractAsyncContextManager[Conn]:
        return self._pool.connection()

    def commit_stats(self) -> CommitStats:
        return CommitStats(self._commit_seconds.snapshot(), self._commit_size.snapshot())


def clean(text: str | None) -> str | None:
    """Free text from workers (log lines, errors, progress messages, tracebacks) as PostgreSQL
    text can hold it: a NUL, which it refuses, becomes U+FFFD, the replacement character."""
    if text is None or "\x00" not in text:
        return text
    return text.replace("\x00", "\ufffd")


async def read_page(
    db: PgDatabase,
    select: str,
    filters: dict[str, Any],
    limit: int,
    cursor: int | None,
    descending: bool,
    conditions: Sequence[tuple[str, Any]] = (),
) -> tuple[list[Row], int | None]:
    """One page of ``select`` in ``seq`` order after ``cursor``, and the next page's cursor
    (see tasky.store.sql_page.page_query; conditions use ``%s``)."""
    query, params = page_query(select, filters, limit, cursor, descending, conditions, "%s")
    return split_page(await db.fetch_all(query, params), limit)
