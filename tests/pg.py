"""PostgreSQL for tests: the server to use, and fresh schemas or databases that are dropped after.

``TEST_POSTGRES_URL`` names a database the tests may create schemas in (and a server on which
they may create databases); default: the local server CI starts. Without a reachable server the
PostgreSQL tests skip locally and fail on CI (``CI=true``), where a missing server is a broken
set-up, not a reason to pass.
"""

from __future__ import annotations

import atexit
import functools
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest

BASE_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@functools.cache
def _unreachable() -> str | None:
    """Why the server cannot be used (None: it can). Asked once per session."""
    try:
        with psycopg.connect(BASE_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL at {BASE_URL} unreachable: {exc}"
    return None


def require_postgres() -> None:
    """Skip the calling test without a PostgreSQL server; on CI, fail it."""
    reason = _unreachable()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} (CI must run the PostgreSQL tests: .ci/run starts the server)")
    pytest.skip(reason)


def url_with_schema(url: str, schema: str) -> str:
    """``url`` whose connections use ``schema`` (libpq's ``options``, so every connection of a
    pool, and of a server process given the URL, gets it)."""
    option = quote(f"-csearch_path={schema}", safe="")
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}options={option}"


def url_with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


@contextmanager
def fresh_schema() -> Iterator[str]:
    """A new empty schema of the test database; yields the URL that uses it, drops it after."""
    require_postgres()
    schema = "tasky_test_" + uuid.uuid4().hex[:12]
    with psycopg.connect(BASE_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield url_with_schema(BASE_URL, schema)
    finally:
        with psycopg.connect(BASE_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    """A new empty database on the test server (for what a schema cannot show: a database
    nobody migrated yet); yields its URL, drops it after (closing what still uses it)."""
    require_postgres()
    name = "tasky_test_" + uuid.uuid4().hex[:12]
    async with await psycopg.AsyncConnection.connect(BASE_URL, autocommit=True) as conn:
        await conn.execute(f"CREATE DATABASE {name}")
    try:
        yield url_with_database(BASE_URL, name)
    finally:
        async with await psycopg.AsyncConnection.connect(BASE_URL, autocommit=True) as conn:
            await conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


@functools.cache
def shared_schema() -> str:
    """One schema for the whole test process (the contract suite empties it before each test,
    see :func:`empty_schema`); dropped when the process exits. Yields its URL."""
    require_postgres()
    schema = f"tasky_shared_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(BASE_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")

    def drop() -> None:
        with psycopg.connect(BASE_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")

    atexit.register(drop)
    return url_with_schema(BASE_URL, schema)


_TABLES = (
    "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
    "AND tablename <> 'tasky_schema'"
)


def _truncate(tables: list[tuple[str]]) -> str | None:
    return f"TRUNCATE {', '.join(t[0] for t in tables)} RESTART IDENTITY" if tables else None


async def empty_schema(url: str) -> None:
    """Empty every table of the schema ``url`` uses (its schema version stays: the tables are
    those of the current version); sequences start again."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("SET lock_timeout = '10s'")  # a store a test left open shows here
        truncate = _truncate(await (await conn.execute(_TABLES)).fetchall())
        if truncate:
            await conn.execute(truncate)


def emptied_shared_schema() -> str:
    """The URL of :func:`shared_schema`, emptied (for tests that are not coroutines)."""
    url = shared_schema()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET lock_timeout = '10s'")
        truncate = _truncate(conn.execute(_TABLES).fetchall())
        if truncate:
            conn.execute(truncate)
    return url
