"""Idempotency-Key in process: the chain store's keyed create, the background pruner, and
retries that are answered before admission (a full queue does not refuse them)."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from pathlib import Path

import httpx
import pytest

from tasky import clock
from tasky.api import key_pruner
from tasky.ids import new_id
from tasky.settings import Settings
from tasky.states import Status
from tasky.store import IdempotencyRecord, SqliteStore, TaskRecord
from tasky.store.chain_records import ChainRecord, StepRecord

API = "/tasky/v1"


def key(name: str = "k", at: float = 1000.0) -> IdempotencyRecord:
    return IdempotencyRecord("ci", name, "fp", "", at, at + 60)


def chain() -> tuple[ChainRecord, list[StepRecord]]:
    record = ChainRecord(new_id(), {"steps": []}, {}, Status.RUNNING, 1000.0)
    return record, [StepRecord(record.id, "a", 0)]


async def test_chain_store_creates_a_keyed_chain_once(tmp_path: Path) -> None:
    tasks = SqliteStore(tmp_path / "tasky.db")
    await tasks.open()
    chains = tasks.chains
    try:
        first, first_steps = chain()
        keyed = dataclasses.replace(key(), target_id=first.id)
        assert await chains.create_with_key(first, first_steps, keyed) is None
        second, second_steps = chain()
        found = await chains.create_with_key(second, second_steps, key(at=1001.0))
        assert found == keyed
        assert await chains.get(second.id) is None and await chains.steps(second.id) == []
        # Chain and key in one transaction: a chain that cannot be inserted leaves no key.
        with pytest.raises(sqlite3.IntegrityError):
            await chains.create_with_key(first, [], key("dup"))
        assert await tasks.find_key("ci", "dup", 0.0) is None
    finally:
        await tasks.close()


async def test_prune_once_forgets_only_expired_keys(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "tasky.db")
    await store.open()
    try:
        for n in range(key_pruner.PRUNE_BATCH + 3):  # more than one batch
            await store.submit_with_key(_task(), key(f"old{n}", at=1000.0))
        await store.submit_with_key(_task(), key("live", at=5000.0))
        assert await key_pruner.prune_once(store, now=2000.0) == key_pruner.PRUNE_BATCH + 3
        assert await store.find_key("ci", "live", 0.0) is not None
    finally:
        await store.close()


def _task() -> TaskRecord:
    return TaskRecord(new_id(), "W", Status.QUEUED, {}, 1000.0)


def _keys_in(settings: Settings) -> int:
    with sqlite3.connect(settings.database_path) as conn:
        count: int = conn.execute("SELECT count(*) FROM idempotency_keys").fetchone()[0]
    return count


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    root = tmp_path / "files"
    root.mkdir()
    # A short window (the pruner runs every second) and a queue of one.
    return Settings(data_dir=tmp_path / "data", roots=[root], idempotency_window=0.5, max_queued=1)


async def test_the_server_prunes_expired_keys_in_the_background(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    answer = await client.post(f"{API}/workers/Echo", json={}, headers={"Idempotency-Key": "k"})
    assert answer.status_code == 201
    assert _keys_in(settings) == 1
    deadline = clock.monotonic() + 10
    while _keys_in(settings) and clock.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert _keys_in(settings) == 0


async def _wait_running(client: httpx.AsyncClient, task_id: str) -> None:
    deadline = clock.monotonic() + 10
    while (await client.get(f"{API}/tasks/{task_id}")).json()["Status"] != "Running":
        assert clock.monotonic() < deadline, f"task {task_id} did not start"
        await asyncio.sleep(0.02)


async def test_a_retry_is_answered_even_when_the_queue_is_full(client: httpx.AsyncClient) -> None:
    hold = f"{API}/workers/Hold"
    running = await client.post(hold, json={"seconds": 30})
    assert running.status_code == 201
    # The premise is one task running and one waiting: wait until the first runs rather than
    # count on its submit starting it at once (one that meets a claim in flight queues first).
    await _wait_running(client, running.json()["TaskId"])
    first = await client.post(hold, json={"seconds": 30}, headers={"Idempotency-Key": "k"})
    assert first.status_code == 201
    assert (await client.post(hold, json={"seconds": 30})).status_code == 429
    retry = await client.post(hold, json={"seconds": 30}, headers={"Idempotency-Key": "k"})
    assert retry.status_code == 200 and retry.json() == first.json()
