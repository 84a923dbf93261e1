"""The SQLite store's writes that nobody waits on (audit rows, token use times): they join the
next group commit on the writer thread instead of adding one of their own (a lone submit committed
on the event loop does not carry them: tests/test_sqlite_inline.py). These tests open real
database files.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tasky.store import sqlite as sqlite_module
from tasky.store.sqlite import SqliteStore
from tests.sqlite_store_helpers import sqlite_store
from tests.store_contract.records import audit_entry, token_record


def _commits(store: SqliteStore) -> int:
    return store.commit_stats().seconds.count


store = sqlite_store


async def test_a_write_nobody_waits_on_rides_on_the_next_commit(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "TRAILING_DELAY", 60.0)
    before = _commits(store)
    audit = asyncio.ensure_future(store.record_audit([audit_entry(1000.0, "rides along")]))
    await asyncio.sleep(0.2)  # long enough for a commit of its own, which must not happen
    assert not audit.done() and _commits(store) == before  # held for the next commit
    await store.write(lambda conn: None)
    await audit
    assert _commits(store) - before == 1  # one commit carried both
    page = await store.list_audit()
    assert [e.target for e in page.entries] == ["rides along"]


async def test_a_write_nobody_waits_on_is_committed_alone_after_a_short_delay(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "TRAILING_DELAY", 0.01)
    before = _commits(store)
    await asyncio.wait_for(store.record_audit([audit_entry(1000.0, "alone")]), timeout=30)
    assert _commits(store) - before == 1
    assert [e.target for e in (await store.list_audit()).entries] == ["alone"]


async def test_closing_commits_the_writes_still_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "TRAILING_DELAY", 60.0)
    path = tmp_path / "data" / "tasky.db"
    first = SqliteStore(path)
    await first.open()
    held = asyncio.ensure_future(first.record_audit([audit_entry(1000.0, "kept")]))
    await asyncio.sleep(0)
    await first.close()
    await held
    again = SqliteStore(path)
    await again.open()
    try:
        assert [e.target for e in (await again.list_audit()).entries] == ["kept"]
    finally:
        await again.close()


async def test_a_token_use_time_rides_on_the_next_commit(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "TRAILING_DELAY", 60.0)
    assert await store.create_token(token_record("ci", "h1"))
    before = _commits(store)
    touch = asyncio.ensure_future(store.touch_token("ci", 1234.0))
    await asyncio.sleep(0.2)
    assert not touch.done() and _commits(store) == before
    await store.write(lambda conn: None)
    await touch
    assert _commits(store) - before == 1
    found = await store.token_by_hash("h1")
    assert found is not None and found.last_used_at == 1234.0
