"""The audit log hands its entries to the store a few milliseconds after the first (FLUSH_DELAY):
a client's requests one after another share one store write instead of each paying its own.
These tests open a real SQLite store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from tasky.auth import audit as audit_module
from tasky.auth.audit import AuditLog
from tasky.store.records import AuditRecord
from tasky.store.sqlite import SqliteStore
from tests.store_contract.records import audit_entry


class _CountingStore(SqliteStore):
    """The real store, counting the audit writes it is given."""

    writes: list[int]

    async def record_audit(self, entries: Sequence[AuditRecord]) -> None:
        self.writes.append(len(entries))
        await super().record_audit(entries)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[_CountingStore]:
    opened = _CountingStore(tmp_path / "tasky.db")
    opened.writes = []
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


async def test_entries_of_a_few_iterations_go_to_the_store_as_one_write(
    store: _CountingStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_module, "FLUSH_DELAY", 60.0)
    log = AuditLog(store)
    for name in ("a", "b", "c"):
        log.add(audit_entry(1000.0, name))
        await asyncio.sleep(0.01)  # other loop iterations: each used to flush on its own
    assert store.writes == []
    await log.close()  # writes what is buffered and waits for it
    assert store.writes == [3]
    assert [e.target for e in (await store.list_audit()).entries] == ["a", "b", "c"]


async def test_entries_go_to_the_store_after_the_delay(
    store: _CountingStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_module, "FLUSH_DELAY", 0.01)
    log = AuditLog(store)
    log.add(audit_entry(1000.0, "a"))
    for _ in range(3000):
        if store.writes:
            break
        await asyncio.sleep(0.01)
    assert store.writes == [1]
    await log.close()
