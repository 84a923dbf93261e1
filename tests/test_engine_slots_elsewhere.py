"""Slots held by another owner: a claim that comes back short because the worker's limit is
spent elsewhere must not make this engine forget that runnable tasks wait. When a slot comes
free here, the next queued task starts at once, not at the next poll."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import BaseModel, ConfigDict, Field

from tasky import AsyncTaskContext, worker
from tasky.api import TaskyApp
from tasky.engine import Engine
from tasky.ids import new_id
from tasky.settings import Settings
from tasky.states import Status
from tasky.store.records import Claim, TaskRecord
from tasky.workers.registry import WorkerRegistry
from tests.helpers import wait_for

# Far longer than the waits below: a task that only the poll would pick up fails the test.
POLL_SECONDS = 120.0


class PairConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: float = Field(default=0, ge=0)


@worker("Pair", description="Two at a time.", config=PairConfig, max_tasks=2)
async def pair(config: PairConfig, task: AsyncTaskContext) -> None:
    await asyncio.sleep(config.seconds)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.poll_interval = POLL_SECONDS
    return settings


@pytest.fixture
def registry(registry: WorkerRegistry) -> WorkerRegistry:
    registry.register(pair)
    return registry


@pytest.fixture
async def engine(app: TaskyApp, client: httpx.AsyncClient) -> AsyncIterator[Engine]:
    found: Engine = app.state.engine
    yield found


async def test_a_slot_freed_here_starts_the_task_that_waited_on_slots_held_elsewhere(
    engine: Engine, client: httpx.AsyncClient
) -> None:
    # Another owner (another node on the same database) holds one of Pair's two slots.
    now = time.time()
    elsewhere = TaskRecord(new_id(), "Pair", Status.QUEUED, {"seconds": 0}, now, queued_at=now)
    await engine.store.submit(elsewhere)
    taken = await engine.store.claim("Pair", Claim("another-node", now + 600, 2, 1), now)
    assert [r.id for r in taken] == [elsewhere.id]

    # This engine takes the other slot, then has a task that must wait: its claim for it comes
    # back empty, because the limit is spent across owners, though a slot is free here by count.
    running = await engine.submit("Pair", {"seconds": 0.5})
    assert running.status is Status.RUNNING
    waiting = await engine.submit("Pair", {"seconds": 0})
    assert waiting.status is Status.QUEUED
    await asyncio.sleep(0.1)
    assert (await engine.get(waiting.id)).status is Status.QUEUED

    # The running task ends and frees its slot here: the waiting task must start now.
    await wait_for(client, running.id, "Completed")
    await wait_for(client, waiting.id, "Completed", timeout=10)
