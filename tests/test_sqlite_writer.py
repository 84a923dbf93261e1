"""The SQLite store's write path: where a commit runs, and writes that ride on another's commit.

A lone new task is committed on the event loop itself when the writer thread is idle (two thread
wake-ups saved per submit); writes nobody waits on (audit rows, token use times) join the next
group commit instead of adding one of their own. These tests open real database files.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tasky.states import Status
from tasky.store import sqlite as sqlite_module
from tasky.store.records import AuditRecord
from tasky.store.sqlite import SqliteStore
from tests.store_contract.records import task


def _entry(target: str) -> AuditRecord:
    return AuditRecord(
        at=1000.0,
        token="admin",
        client="127.0.0.1",
        method="POST",
        route="/tasky/v1/workers/{name}",
        target=target,
        status=201,
    )


def _commits(store: SqliteStore) -> int:
    return store.commit_stats().seconds.count


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "data" / "tasky.db")
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


def _insert_threads(store: SqliteStore) -> list[int]:
    """The threads that run INSERT INTO tasks on the writer connection, from now on."""
    seen: list[int] = []

    def trace(statement: str) -> None:
        if statement.startswith("INSERT INTO tasks"):
            seen.append(threading.get_ident())

    conn = store._writer_conn
    assert conn is not None
    conn.set_trace_callback(trace)
    return seen


async def test_a_lone_submit_is_committed_on_the_event_loop(store: SqliteStore) -> None:
    threads = _insert_threads(store)
    before = _commits(store)
    first = await store.submit(task())
    second = await store.submit(task())
    assert threads and set(threads) == {threading.get_ident()}
    assert _commits(store) - before == 2
    for submitted in (first, second):  # committed: a fresh read connection sees them
        stored = await store.get(submitted.id)
        assert stored is not None and stored.status is Status.QUEUED


async def test_submits_while_the_writer_is_busy_go_to_it_and_share_commits(
    store: SqliteStore,
) -> None:
    threads = _insert_threads(store)
    before = _commits(store)
    # A burst: the first hand-over holds many, later ones queue behind the writer's commit.
    waves = [asyncio.gather(*(store.submit(task()) for _ in range(20))) for _ in range(5)]
    done = await asyncio.gather(*waves)
    assert sum(len(wave) for wave in done) == 100
    assert threading.get_ident() not in threads  # none of these was lone
    assert 1 <= _commits(store) - before < 100


async def test_a_write_nobody_waits_on_rides_on_the_next_commit(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "TRAILING_DELAY", 60.0)
    before = _commits(store)
    audit = asyncio.ensure_future(store.record_audit([_entry("rides along")]))
    await asyncio.sleep(0.2)  # long enough for a commit of its own, which must not happen
    assert not audit.done() and _commits(store) == before  # held for the next commit
    await store.submit(task())
    await audit
    assert _commits(store) - before == 1  # one commit carried both
    page = await store.list_audit()
    assert [e.target for e in page.entries] == ["rides along"]


async def test_a_write_nobody_waits_on_is_committed_alone_after_a_short_delay(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "TRAILING_DELAY", 0.01)
    before = _commits(store)
    await asyncio.wait_for(store.record_audit([_entry("alone")]), timeout=30)
    assert _commits(store) - before == 1
    assert [e.target for e in (await store.list_audit()).entries] == ["alone"]


async def test_closing_commits_the_writes_still_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "TRAILING_DELAY", 60.0)
    path = tmp_path / "data" / "tasky.db"
    first = SqliteStore(path)
    await first.open()
    held = asyncio.ensure_future(first.record_audit([_entry("kept")]))
    await asyncio.sleep(0)
    await first.close()
    await held
    again = SqliteStore(path)
    await again.open()
    try:
        assert [e.target for e in (await again.list_audit()).entries] == ["kept"]
    finally:
        await again.close()


async def test_a_refused_lone_insert_fails_alone_and_the_store_goes_on(
    store: SqliteStore,
) -> None:
    threads = _insert_threads(store)
    taken = await store.submit(task())
    with pytest.raises(Exception, match="UNIQUE"):  # the same id again: refused on the loop
        await store.submit(dataclasses.replace(task(), id=taken.id))
    assert threading.get_ident() in threads
    after = await store.submit(task())
    assert (await store.get(after.id)) is not None
