"""The PostgreSQL store's connections to the other nodes: LISTEN that survives losing its
connection, and a pool whose connections PostgreSQL closed (a restart, a terminated backend)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import psycopg
import pytest

from tasky.states import Status
from tasky.store.postgres import PostgresStore
from tasky.store.records import Wakeup
from tests.pg import fresh_schema
from tests.store_contract.records import OTHER, claim, outcome, task

pytestmark = pytest.mark.postgres


@pytest.fixture
async def url() -> AsyncIterator[str]:
    """A fresh schema; connections named so the test can find (and end) its own backends."""
    with fresh_schema() as schema_url:
        yield f"{schema_url}&application_name=tasky-{uuid.uuid4().hex[:12]}"


async def _terminate(url: str, where: str, params: tuple[object, ...]) -> int:
    """End the backends and wait until each is gone (up to 10 s), so what the test does next
    meets connections that are closed, not ones still closing."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cursor = await conn.execute(
            "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity "
            f"WHERE pid <> pg_backend_pid() AND {where}",
            params,
        )
        return len(await cursor.fetchall())


async def _hear(hints: asyncio.Queue[Wakeup], wanted: Wakeup) -> None:
    while await asyncio.wait_for(hints.get(), 30) != wanted:
        pass


async def test_listen_reconnects_after_its_backend_is_terminated(url: str) -> None:
    here, there = PostgresStore(url), PostgresStore(url)
    await here.open()
    await there.open()
    try:
        hints: asyncio.Queue[Wakeup] = asyncio.Queue()
        here.watch(hints.put_nowait)
        listener = here.listener
        assert listener is not None
        await asyncio.wait_for(listener.connected.wait(), 30)
        first = listener.backend_pid
        assert await _terminate(url, "pid = %s", (first,)) == 1
        # Whatever was said while it was away is lost: the node is told to look at everything.
        await _hear(hints, Wakeup("all"))
        assert listener.backend_pid not in (None, first)
        await there.submit(task(worker="After"))
        await _hear(hints, Wakeup("changes"))
    finally:
        await there.close()
        await here.close()


@pytest.mark.parametrize("first", ["submit", "submit_many", "get"])
async def test_operations_go_on_after_the_pools_connections_are_terminated(
    url: str, first: str
) -> None:
    store = PostgresStore(url)
    await store.open()
    try:
        before = await store.submit(task())
        name = url.rpartition("application_name=")[2]
        assert await _terminate(url, "application_name = %s", (name,)) >= 1
        # Every pooled connection is gone; each operation gets a working one, the first
        # whether it is one statement, a transaction or a read.
        if first == "submit":
            after = await store.submit(task())
        elif first == "submit_many":
            [after] = await store.submit_many([task()])
        else:
            assert await store.get(before.id) == before
            after = await store.submit(task())
        claimed = await store.claim("W", claim(OTHER), 1001.0)
        assert [t.id for t in claimed] == [before.id, after.id]
        for t in claimed:
            assert await store.finish(t.id, OTHER, 1, outcome())
        stored = await store.get(after.id)
        assert stored is not None and stored.status is Status.COMPLETED
    finally:
        await store.close()


async def test_watching_again_sends_the_hints_to_the_new_callback(url: str) -> None:
    here, there = PostgresStore(url), PostgresStore(url)
    await here.open()
    await there.open()
    try:
        old: asyncio.Queue[Wakeup] = asyncio.Queue()
        new: asyncio.Queue[Wakeup] = asyncio.Queue()
        here.watch(old.put_nowait)
        here.watch(new.put_nowait)  # an engine started again on the same store object
        assert here.listener is not None
        await asyncio.wait_for(here.listener.connected.wait(), 30)
        await there.submit(task())
        await _hear(new, Wakeup("changes"))
        assert old.empty()
    finally:
        await there.close()
        await here.close()


async def test_a_store_is_not_woken_by_its_own_notifications(url: str) -> None:
    here, there = PostgresStore(url), PostgresStore(url)
    await here.open()
    await there.open()
    try:
        theirs = await there.submit(task(worker="Other"))
        await there.claim("Other", claim(OTHER, count=1), 1001.0)
        hints: asyncio.Queue[Wakeup] = asyncio.Queue()
        here.watch(hints.put_nowait)
        assert here.listener is not None
        await asyncio.wait_for(here.listener.connected.wait(), 30)
        await here.submit(task())
        await here._notifier.drain()  # its NOTIFY went out: delivered before anything later
        assert await there.request_action(theirs.id, OTHER, 1, "cancel", 1002.0)
        # The first hint is the other store's request: its own submit did not come back.
        assert await asyncio.wait_for(hints.get(), 30) == Wakeup("control", OTHER)
    finally:
        await there.close()
        await here.close()
