"""A chain's next step starts in the commit of the end of the step before it (SQLite): one
durable commit per sequential step, the same steps, results and references as when the step
starts in a commit of its own, and still one task per step when two runners race."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tasky.chains.runner import ChainRunner
from tasky.server import build_app
from tasky.settings import Settings
from tasky.store import create_store
from tasky.workers.base import EmptyConfig, Worker
from tasky.workers.context import AsyncTaskContext
from tasky.workers.registry import WorkerRegistry
from tests.conftest import _open_client
from tests.test_chains_scale import assert_each_step_ran_once, run_whole, sequential

API = "/tasky/v1"


class Nothing(Worker):
    """Returns at once and logs nothing: a step's only writes are the chain's own."""

    name = "Nothing"
    description = "Does nothing."
    max_tasks = 1000
    idempotent = True

    async def perform(self, config: EmptyConfig, task: AsyncTaskContext) -> None:
        return None


@pytest.fixture
def registry(registry: WorkerRegistry) -> WorkerRegistry:
    registry.register(Nothing)
    return registry


@pytest.fixture
async def sqlite(
    settings: Settings, registry: WorkerRegistry
) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    app = build_app(settings, registry=registry)  # the default store: a SQLite file
    async for client in _open_client(app):
        yield app, client


async def commits(client: httpx.AsyncClient) -> float:
    r = await client.get("/metrics")
    assert r.status_code == 200
    found = re.search(r"^tasky_store_commit_seconds_count (\S+)$", r.text, re.MULTILINE)
    assert found is not None
    return float(found.group(1))


async def test_each_step_starts_in_the_commit_of_the_one_before(
    sqlite: tuple[Any, httpx.AsyncClient],
) -> None:
    """Each step's end and the start of the next are one commit: a chain of n steps costs
    about n commits, where ending a step and starting the next in commits of their own cost
    2n."""
    _, client = sqlite
    n = 120
    before = await commits(client)
    _, done, steps = await run_whole(client, sequential(n), timeout=120)
    used = await commits(client) - before
    assert done["Status"] == "Completed", done["Error"]
    assert_each_step_ran_once(steps, n)
    # n step ends, plus the chain's creation, its first step, its end, and slack for the odd
    # step that goes the usual way; far from 2n.
    assert used <= n + 15, used


async def test_references_to_the_step_before_are_filled_in(
    sqlite: tuple[Any, httpx.AsyncClient],
) -> None:
    """A step started with the end of the one before reads that step's result (as stored)."""
    _, client = sqlite
    body = {
        "steps": [{"name": "s0", "worker": "Echo", "config": {"value": {"v": ["x", 1]}}}]
        + [
            {
                "name": f"s{i}",
                "worker": "Echo",
                "config": {"value": {"v": f"${{steps.s{i - 1}.result.v}}"}},
            }
            for i in range(1, 30)
        ]
        + [{"name": "last", "worker": "Echo", "config": {"value": "${steps.s29.status}"}}]
    }
    _, done, steps = await run_whole(client, body, timeout=120)
    assert done["Status"] == "Completed", done["Error"]
    assert [s["Output"] for s in steps[:30]] == [{"v": ["x", 1]}] * 30
    assert done["Result"] == {"string_output": "Completed"}


async def test_two_runners_start_each_step_once_on_sqlite(
    sqlite: tuple[Any, httpx.AsyncClient],
) -> None:
    """Both runners hear every end before it commits and both start the next step with it:
    the step's one task id lets one of them, so each step has one task."""
    app, client = sqlite
    engine = app.starlette.state.engine
    other = ChainRunner(engine, engine.store.chains)
    await other.start()
    try:
        chain_id, done, steps = await run_whole(client, sequential(150), timeout=120)
        assert done["Status"] == "Completed", done["Error"]
        assert_each_step_ran_once(steps, 150)
        page = await engine.store.list_tasks(chain_id=chain_id, limit=1000)
        assert len(page.tasks) == 150
    finally:
        await other.stop()


async def test_the_memory_store_goes_the_usual_way(
    settings: Settings, registry: WorkerRegistry
) -> None:
    """A store without ChainStore.advance: the runner hears no end before it commits."""
    app = build_app(settings, registry=registry, store=create_store("memory:"))
    async for client in _open_client(app):
        _, done, steps = await run_whole(client, sequential(20), timeout=60)
        assert done["Status"] == "Completed", done["Error"]
        assert_each_step_ran_once(steps, 20)
