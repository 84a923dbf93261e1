"""The store is the queue of record: the engine runs what the store holds, not a list of its own.

Tasks written to the store behind the engine's back (through the store object the engine uses,
or through another connection to the same database) are claimed and run by the periodic poll,
in FIFO order, never more than the worker's max_tasks at once. And the batch submit.
"""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, ConfigDict, Field

from tasky import AsyncTaskContext, Worker, clock, worker
from tasky.api import TaskyApp
from tasky.engine import Engine
from tasky.engine.admission import QueueCount, admit_counted
from tasky.engine.errors import BatchInvalid, Draining, QueueFull, WorkerDisabled
from tasky.ids import new_id
from tasky.settings import Settings
from tasky.states import Status
from tasky.store.records import TaskRecord
from tasky.store.sqlite import SqliteStore
from tasky.workers.registry import WorkerRegistry
from tests.helpers import wait_for


class GaugeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: float = Field(default=0.05, ge=0)


class Gauge:
    """What the Gauge worker saw: the order tasks started in and the most that ran at once."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.running = 0
        self.most = 0


GAUGE = Gauge()


@worker("Gauge", description="Counts how many of it run at once.", config=GaugeConfig, max_tasks=2)
async def gauge(config: GaugeConfig, task: AsyncTaskContext) -> None:
    GAUGE.started.append(task.id)
    GAUGE.running += 1
    GAUGE.most = max(GAUGE.most, GAUGE.running)
    try:
        await asyncio.sleep(config.seconds)
    finally:
        GAUGE.running -= 1


class LabelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str


@worker("Label", description="Returns its label.", config=LabelConfig, max_tasks=10)
async def label(config: LabelConfig, task: AsyncTaskContext) -> str:
    return config.label


class Off(Worker):
    name = "Off"
    description = "Disabled."
    enabled = False

    async def perform(self, config: BaseModel, task: object) -> None:
        return None


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.poll_interval = 0.1
    return settings


@pytest.fixture
def registry(registry: WorkerRegistry) -> WorkerRegistry:
    global GAUGE
    GAUGE = Gauge()
    registry.register(gauge)
    registry.register(label)
    registry.register(Off)
    return registry


@pytest.fixture
async def engine(app: TaskyApp, client: httpx.AsyncClient) -> AsyncIterator[Engine]:
    found: Engine = app.state.engine
    yield found


def _queued(worker: str, config: Any, at: float) -> TaskRecord:
    return TaskRecord(new_id(), worker, Status.QUEUED, config, at, queued_at=at)


async def test_tasks_queued_behind_the_engines_back_run_fifo_within_max_tasks(
    settings: Settings, engine: Engine, client: httpx.AsyncClient
) -> None:
    now = time.time()
    first = [_queued("Gauge", {"seconds": 0.1}, now + i * 0.001) for i in range(4)]
    # Another connection to the database (another engine's store would write the same rows).
    SqliteStore(settings.database_path).insert_many_now(first)
    # The engine's own store object, used directly: the engine hears nothing of these either.
    later = [_queued("Gauge", {"seconds": 0.1}, now + 1 + i * 0.001) for i in range(4)]
    for record in later:
        await engine.store.submit(record)
    for record in first + later:
        await wait_for(client, record.id, "Completed")
    assert GAUGE.started == [r.id for r in first + later]
    assert GAUGE.most == 2
    details = [(await engine.get(r.id)) for r in first + later]
    started = [d.started_at for d in details]
    assert started == sorted(started)


async def test_a_claim_fails_each_task_whose_stored_config_is_invalid_and_runs_the_rest(
    settings: Settings, engine: Engine, client: httpx.AsyncClient
) -> None:
    """A claim's configs are checked together: each bad one still fails on its own, with its
    own error, and the good ones beside it run."""
    now = time.time()
    configs: list[Any] = [{"label": "a"}, {"label": 1}, {"label": "c\x00"}, {"label": "d"}, {}]
    records = [_queued("Label", c, now + i * 0.001) for i, c in enumerate(configs)]
    SqliteStore(settings.database_path).insert_many_now(records)
    ends = [await wait_for(client, r.id, "Completed", "Failed") for r in records]
    assert [e["Status"] for e in ends] == ["Completed", "Failed", "Failed", "Completed", "Failed"]
    results = [(await engine.get(records[i].id)).result for i in (0, 3)]
    assert results == [{"string_output": "a"}, {"string_output": "d"}]
    assert ends[1]["Error"] == "invalid config: label: Input should be a valid string"
    assert ends[2]["Error"] == (
        "invalid config: label: must not contain control characters (found U+0000)"
    )
    assert ends[4]["Error"] == "invalid config: label: Field required"


async def test_a_claiming_submit_waits_behind_tasks_queued_behind_its_back(
    engine: Engine, client: httpx.AsyncClient
) -> None:
    # The engine knows of no waiting task and has free slots, so it lets the store decide: the
    # store sees the one queued directly and keeps the new task behind it.
    blocker = _queued("Hold", {"seconds": 30}, time.time())
    await engine.store.submit(blocker)
    submitted = await engine.submit("Hold", {"seconds": 0})
    assert submitted.status is Status.QUEUED
    await wait_for(client, blocker.id, "Running")
    assert (await engine.get(submitted.id)).status is Status.QUEUED
    await engine.cancel(blocker.id)
    await wait_for(client, submitted.id, "Completed")


async def test_submit_many_creates_in_order_and_starts_what_fits(
    engine: Engine, client: httpx.AsyncClient
) -> None:
    created = await engine.submit_many("Gauge", [{"seconds": 0.2}] * 5)
    assert [r.status for r in created] == [Status.RUNNING] * 2 + [Status.QUEUED] * 3
    assert engine.counters("Gauge").submitted == 5
    for record in created:
        await wait_for(client, record.id, "Completed")
    assert GAUGE.started == [r.id for r in created]
    assert GAUGE.most == 2
    events = [e for _, e in engine.events.since(0) if e["type"] == "task.created"]
    assert [e["task"] for e in events] == [r.id for r in created]


async def test_submit_many_with_an_invalid_config_creates_nothing(engine: Engine) -> None:
    configs: list[Any] = [{"seconds": 1}, {"seconds": -1}, {"seconds": 1}, {"nope": 2}]
    with pytest.raises(BatchInvalid) as caught:
        await engine.submit_many("Gauge", configs)
    assert sorted(caught.value.errors) == [1, 3]
    assert caught.value.errors[1].errors()[0]["loc"] == ("seconds",)
    assert caught.value.errors[3].errors()[0]["type"] == "extra_forbidden"
    assert (await engine.list_tasks()).tasks == []
    assert engine.counters("Gauge").submitted == 0


async def test_submit_many_is_refused_as_a_single_submit_is(
    settings: Settings, engine: Engine
) -> None:
    with pytest.raises(WorkerDisabled):
        await engine.submit_many("Off", [{}])
    settings.max_queued = 3
    # Hold runs one at a time: of five, one starts and four would wait, over the cap of three.
    with pytest.raises(QueueFull):
        await engine.submit_many("Hold", [{"seconds": 30}] * 5)
    assert (await engine.list_tasks()).tasks == []
    created = await engine.submit_many("Hold", [{"seconds": 30}] * 4)
    assert [r.status for r in created] == [Status.RUNNING] + [Status.QUEUED] * 3
    engine.drain(30)
    with pytest.raises(Draining):
        await engine.submit_many("Echo", [{"value": 1}])
    for record in created:
        await engine.cancel(record.id)


async def test_submit_many_of_nothing_creates_nothing(engine: Engine) -> None:
    assert await engine.submit_many("Echo", []) == []


@pytest.mark.parametrize("interval", [0.0, -1.0, math.nan, 1e9])
def test_poll_interval_out_of_range_is_refused(settings: Settings, interval: float) -> None:
    settings.poll_interval = interval
    with pytest.raises(ValueError, match="--poll-interval"):
        settings.check()


@pytest.mark.parametrize("how", ["option", "environment"])
def test_serve_takes_the_poll_interval(tmp_path: Path, how: str) -> None:
    argv = [sys.executable, "-m", "tasky", "serve", "--addr", "127.0.0.1:0"]
    argv += ["--data", str(tmp_path / "data")]
    env = {**os.environ}
    if how == "option":
        argv += ["--poll-interval", "0"]
    else:
        env["TASKY_POLL_INTERVAL"] = "0"
    out = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=30)
    assert out.returncode == 2
    assert "--poll-interval must be more than 0" in out.stderr


async def test_a_claim_in_flight_leaves_the_fast_path_open(engine: Engine) -> None:
    lane = engine._lanes["Echo"]
    started = []
    for n in range(20):
        await engine._dispatcher.settle(lane)
        lane.wake()  # the store may hold work: a claim goes out (and finds nothing)
        assert lane.claiming is not None
        record = await engine.submit("Echo", {"value": n})
        started.append(record.status)
    # Nothing waited, so each submit started its own task in its own write.
    assert started == [Status.RUNNING] * 20


def test_admit_counted_admits_only_on_a_fresh_count_with_room() -> None:
    """The submit's synchronous admission: what admit() does before it would read the store."""
    now = clock.monotonic()
    fresh = QueueCount(counted=8, counted_at=now)
    assert admit_counted(fresh, limit=10, now=now)
    assert admit_counted(fresh, limit=10, n=1, now=now)
    assert fresh.estimate() == 10
    assert not admit_counted(fresh, limit=10, now=now)  # full: admit() must read the store
    assert fresh.estimate() == 10  # a refusal admits nothing
    stale = QueueCount(counted=0, counted_at=now - 60)
    assert not admit_counted(stale, limit=10, now=now)  # too old to trust: read the store
    assert stale.estimate() == 0
    never = QueueCount()
    assert not admit_counted(never, limit=10)  # never counted
