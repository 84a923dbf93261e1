"""Leases on a store shared by many nodes (PostgreSQL): what an engine takes at start, what its
sweep takes while it runs, and what a graceful stop hands over. Engines in this process stand for
nodes (each with its own store object, pool and owner); the processes are in test_nodes.py."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tasky.engine import Engine
from tasky.ids import new_id
from tasky.settings import Settings
from tasky.states import Status
from tasky.store.postgres import PostgresStore
from tasky.store.records import ChildRecord, Claim, TaskRecord
from tasky.workers.registry import WorkerRegistry
from tests.pg import emptied_shared_schema, pg_store

pytestmark = pytest.mark.postgres

FAR = 4_000_000_000.0  # a lease that does not run out during a test


@pytest.fixture
def pg_url() -> str:
    return emptied_shared_schema()


store = pg_store


def node_settings(settings: Settings, pg_url: str, node: str, pid: int) -> Settings:
    settings.database_url = pg_url
    settings.node = node
    settings.node_id = f"{node}:{pid}"
    settings.sweep_interval = 0.1
    settings.poll_interval = 0.1
    settings.lease_seconds = 30.0
    return settings


@contextlib.asynccontextmanager
async def web_1(
    store: PostgresStore, registry: WorkerRegistry, settings: Settings, pg_url: str
) -> AsyncIterator[Engine]:
    """This node's engine (web-1:9) started, and stopped after."""
    engine = Engine(store, registry, node_settings(settings, pg_url, "web-1", 9))
    await engine.start()
    try:
        yield engine
    finally:
        await engine.stop()


async def held_by(
    store: PostgresStore, worker: str, owner: str, lease_until: float, config: object = None
) -> TaskRecord:
    """A task of ``worker`` that ``owner`` claimed (a node's claim, as stored)."""
    now = time.time()
    config = {"seconds": 30} if config is None else config
    record = TaskRecord(new_id(), worker, Status.QUEUED, config, now, queued_at=now)
    stored = await store.submit(record, Claim(owner, lease_until, 100))
    assert (stored.status, stored.owner) == (Status.RUNNING, owner)
    return stored


async def until(store: PostgresStore, task_id: str, *statuses: Status) -> TaskRecord:
    for _ in range(400):
        got = await store.get(task_id)
        assert got is not None
        if got.status in statuses:
            return got
        await asyncio.sleep(0.025)
    raise AssertionError(f"task {task_id} is {got.status}, not one of {statuses}")


async def test_start_takes_this_nodes_earlier_tasks_and_expired_ones_only(
    store: PostgresStore, settings: Settings, registry: WorkerRegistry, pg_url: str
) -> None:
    past = time.time() - 60
    live_elsewhere = await held_by(store, "NoPause", "web-2:7", FAR)
    expired_elsewhere = await held_by(store, "NoPause", "web-3:8", past)
    mine_before = await held_by(store, "Hold", "web-1:6", FAR)  # this node's previous run
    # Another dead node's task of a worker this node lacks: left for a node that has it.
    elsewhere_unknown = await held_by(store, "NotHere", "web-3:8", past)
    async with web_1(store, registry, settings, pg_url):
        # Another live node's task: left alone (still its owner's, same attempt).
        got = await store.get(live_elsewhere.id)
        assert got is not None and (got.status, got.owner, got.attempt) == (
            Status.RUNNING,
            "web-2:7",
            1,
        )
        # A dead node's task (its lease ran out), not idempotent: Failed, naming the node.
        failed = await until(store, expired_elsewhere.id, Status.FAILED)
        assert failed.error is not None and "web-3:8" in failed.error
        assert "not safe to re-run" in failed.error
        # This node's earlier run's task, idempotent: queued again, and run here as attempt 2.
        rerun = await until(store, mine_before.id, Status.RUNNING)
        assert (rerun.attempt, rerun.owner) == (2, "web-1:9")
        left = await store.get(elsewhere_unknown.id)
        assert left is not None and (left.status, left.owner) == (Status.RUNNING, "web-3:8")


async def test_the_sweep_takes_a_dead_nodes_tasks_and_runs_the_idempotent_ones_again(
    store: PostgresStore, settings: Settings, registry: WorkerRegistry, pg_url: str
) -> None:
    async with web_1(store, registry, settings, pg_url):
        # web-2 claimed these and died: their leases run out a moment from now.
        soon = time.time() + 0.5
        again = await held_by(store, "Echo", "web-2:7", soon, {"value": 1})
        lost = await held_by(store, "NoPause", "web-2:7", soon)
        unknown = await held_by(store, "NotHere", "web-2:7", soon)
        done = await until(store, again.id, Status.COMPLETED)
        assert (done.attempt, done.owner) == (2, None)
        attempts = await store.attempts(again.id)
        assert [(a.attempt, a.status) for a in attempts] == [
            (1, Status.FAILED),
            (2, Status.COMPLETED),
        ]
        assert attempts[0].error is not None and "node web-2:7" in attempts[0].error
        failed = await until(store, lost.id, Status.FAILED)
        assert failed.attempt == 1
        assert failed.error is not None and "web-2:7" in failed.error
        # A worker this node lacks: left for a node that has it.
        left = await store.get(unknown.id)
        assert left is not None and (left.status, left.owner) == (Status.RUNNING, "web-2:7")


async def test_the_sweep_leaves_this_engines_own_late_leases_alone(
    store: PostgresStore, settings: Settings, registry: WorkerRegistry, pg_url: str
) -> None:
    async with web_1(store, registry, settings, pg_url) as engine:
        mine = await engine.submit("Hold", {"seconds": 30})
        assert mine.status is Status.RUNNING
        # Its lease runs out (a heartbeat came late), and a dead node's task marks a sweep.
        assert await store.heartbeat("web-1:9", [mine.id], time.time() - 1) == 1
        marker = await held_by(store, "NoPause", "web-2:7", time.time() - 1)
        await until(store, marker.id, Status.FAILED)
        got = await store.get(mine.id)
        assert got is not None and (got.status, got.owner, got.attempt) == (
            Status.RUNNING,
            "web-1:9",
            1,
        )


async def test_a_graceful_stop_hands_running_tasks_over_at_once(
    store: PostgresStore, settings: Settings, registry: WorkerRegistry, pg_url: str, tmp_path: Path
) -> None:
    first = Engine(store, registry, node_settings(settings, pg_url, "web-1", 9))
    await first.start()
    safe = await first.submit("Hold", {"seconds": 30})
    unsafe = await first.submit("NoPause", {"seconds": 30})
    assert safe.status is unsafe.status is Status.RUNNING
    first.drain(0)
    await first.stop()
    # No lease had run out: the stop itself handed both over.
    queued = await store.get(safe.id)
    assert queued is not None and (queued.status, queued.attempt, queued.owner) == (
        Status.QUEUED,
        2,
        None,
    )
    failed = await store.get(unsafe.id)
    assert failed is not None and failed.status is Status.FAILED
    assert failed.error is not None and "web-1:9 stopped" in failed.error
    # Another node runs the idempotent one at once (its slot was freed with the stop).
    other_settings = Settings(data_dir=tmp_path / "data2", roots=settings.roots)
    other_store = PostgresStore(pg_url)
    await other_store.open()
    second = Engine(other_store, registry, node_settings(other_settings, pg_url, "web-2", 7))
    await second.start()
    try:
        running = await until(other_store, safe.id, Status.RUNNING)
        assert (running.owner, running.attempt) == ("web-2:7", 2)
    finally:
        await second.stop()
        await other_store.close()


async def test_start_ends_and_forgets_only_this_nodes_leftover_children(
    store: PostgresStore, settings: Settings, registry: WorkerRegistry, pg_url: str
) -> None:
    # Records that match no running process (another boot): nothing is killed either way.
    mine = ChildRecord("a" * 32, 999_999, 1, "another-boot", "m1", node="web-1")
    theirs = ChildRecord("b" * 32, 999_998, 1, "another-boot", "m2", node="web-2")
    await store.record_child(mine)
    await store.record_child(theirs)
    async with web_1(store, registry, settings, pg_url):
        assert await store.children() == [theirs]


async def test_two_nodes_sweeping_at_once_take_each_task_once(
    store: PostgresStore,
    settings: Settings,
    registry: WorkerRegistry,
    pg_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    other_settings = Settings(data_dir=tmp_path / "data2", roots=settings.roots)
    other_store = PostgresStore(pg_url)
    await other_store.open()
    engines = [
        Engine(store, registry, node_settings(settings, pg_url, "web-1", 9)),
        Engine(other_store, registry, node_settings(other_settings, pg_url, "web-2", 8)),
    ]
    for engine in engines:
        await engine.start()
    try:
        # A dead node's tasks, not safe to re-run: each must fail once, whichever node sweeps.
        soon = time.time() + 0.3
        lost = [await held_by(store, "NoPause", "web-3:7", soon) for _ in range(8)]
        for record in lost:
            await until(store, record.id, Status.FAILED)
        await asyncio.sleep(0.5)  # more sweeps of both nodes: none may take a task again
        for record in lost:
            [attempt] = await store.attempts(record.id)
            assert attempt.status is Status.FAILED
            failed_lines = [r for r in caplog.records if f"task {record.id}" in r.getMessage()]
            assert len(failed_lines) == 1, failed_lines
    finally:
        for engine in engines:
            await engine.stop()
        await other_store.close()
