"""PostgreSQL for tests: the server to use, and schemas that are dropped after.

``TEST_POSTGRES_URL`` names a database the tests may create schemas in; default: the local
server CI starts. Most tests share one schema per test process, emptied before each test (a
schema of their own costs more than they do); tests that change a schema's version get a fresh
one. Without a reachable server the
PostgreSQL tests skip locally and fail on CI (``CI=true``), where a missing server is a broken
set-up, not a reason to pass.
"""

from __future__ import annotations

import atexit
import functools
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from urllib.parse import quote

import psycopg
import pytest

from tasky.store.postgres import PostgresStore

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


def _emptying(tables: list[tuple[str]]) -> str:
    """DELETE, not TRUNCATE: these tables hold a few rows, and a TRUNCATE makes new files for
    every table and index (ten times slower here, far more on a busy disk)."""
    return "; ".join(f"DELETE FROM {t[0]}" for t in tables)


async def empty_schema(url: str) -> None:
    """Empty every table of the schema ``url`` uses (its schema version stays: the tables are
    those of the current version)."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("SET lock_timeout = '10s'")  # a store a test left open shows here
        tables = await (await conn.execute(_TABLES)).fetchall()
        if tables:
            await conn.execute(_emptying(tables))  # one query string: one transaction


def emptied_shared_schema() -> str:
    """The URL of :func:`shared_schema`, emptied (for tests that are not coroutines)."""
    url = shared_schema()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET lock_timeout = '10s'")
        tables = conn.execute(_TABLES).fetchall()
        if tables:
            conn.execute(_emptying(tables))
    return url


@pytest.fixture
async def pg_store(pg_url: str) -> AsyncIterator[PostgresStore]:
    """An open PostgreSQL store on the test module's ``pg_url`` fixture, closed after the test
    (a test module takes it by name: ``store = pg_store``)."""
    s = PostgresStore(pg_url)
    await s.open()
    yield s
    await s.close()
