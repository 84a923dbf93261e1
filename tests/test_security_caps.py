"""Caps with clear answers: a full worker queue answers 429, oversized chains 413 or 422."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import httpx
import pytest
from pydantic import BaseModel

from tasky.api import TaskyApp
from tasky.server import build_app
from tasky.settings import Settings
from tasky.workers.base import Worker
from tasky.workers.context import AsyncTaskContext
from tasky.workers.registry import WorkerRegistry
from tests.conftest import ServerProcess, _open_client
from tests.helpers import API, action, submit, wait_for
from tests.workers_for_tests import HoldConfig


class Narrow(Worker):
    """Its own queue cap, below the server's."""

    name = "Narrow"
    Config = HoldConfig
    max_tasks = 1
    max_queued: ClassVar[int | None] = 2

    async def perform(self, config: BaseModel, task: AsyncTaskContext) -> None:
        assert isinstance(config, HoldConfig)
        await task.sleep(config.seconds)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.max_queued = 3
    settings.max_chain_params_bytes = 1000
    settings.max_chain_definition_bytes = 4000
    settings.max_chain_steps = 5
    return settings


@pytest.fixture
def registry(registry: WorkerRegistry) -> WorkerRegistry:
    registry.register(Narrow)
    return registry


async def task_ids(client: httpx.AsyncClient, worker: str) -> list[str]:
    r = await client.get(f"{API}/tasks", params={"worker": worker, "limit": 1000})
    return [t["TaskId"] for t in r.json()["Tasks"]]


def assert_full(r: httpx.Response) -> None:
    assert r.status_code == 429, r.text
    assert r.headers["Retry-After"].isdigit()
    assert "limit" in r.json()["Error"]


async def fill(client: httpx.AsyncClient, worker: str, waiting: int) -> list[str]:
    """One running task that holds the only slot, then ``waiting`` queued behind it."""
    running = await submit(client, worker, {"seconds": 60})
    await wait_for(client, running, "Running")
    return [running] + [await submit(client, worker, {"seconds": 0}) for _ in range(waiting)]


# -- the queue cap ------------------------------------------------------------------------------
async def test_submit_over_the_queue_cap_gets_429(client: httpx.AsyncClient) -> None:
    ids = await fill(client, "Hold", 3)
    for _ in range(3):
        assert_full(await client.post(f"{API}/workers/Hold", json={"seconds": 0}))
    assert sorted(await task_ids(client, "Hold")) == sorted(ids)
    # A held (paused) task still waits, so it still counts.
    assert (await action(client, ids[1], "pause")).status_code == 200
    assert_full(await client.post(f"{API}/workers/Hold", json={"seconds": 0}))
    # A cancelled one does not: there is room again (once the refusal's count has aged).
    assert (await action(client, ids[2], "cancel")).status_code == 200
    await asyncio.sleep(0.1)
    await submit(client, "Hold", {"seconds": 0})
    assert_full(await client.post(f"{API}/workers/Hold", json={"seconds": 0}))
    await action(client, ids[0], "cancel")


async def test_a_worker_cap_overrides_the_server_cap(client: httpx.AsyncClient) -> None:
    ids = await fill(client, "Narrow", 2)
    assert_full(await client.post(f"{API}/workers/Narrow", json={"seconds": 0}))
    assert sorted(await task_ids(client, "Narrow")) == sorted(ids)
    await action(client, ids[0], "cancel")


async def test_rerun_of_a_finished_task_counts(client: httpx.AsyncClient) -> None:
    done = await submit(client, "Hold", {"seconds": 0})
    await wait_for(client, done, "Completed")
    ids = await fill(client, "Hold", 3)
    r = await action(client, done, "run")
    assert_full(r)
    assert (await client.get(f"{API}/tasks/{done}/status")).json()["Status"] == "Completed"
    await action(client, ids[-1], "cancel")
    await asyncio.sleep(0.1)
    assert (await action(client, done, "run")).json()["Status"] == "Queued"
    await action(client, ids[0], "cancel")


def test_a_flood_on_a_real_server_stops_at_the_cap(server_factory: Any) -> None:
    srv: ServerProcess = server_factory("--workers", "tests.workers_for_tests", "--max-queued", "5")

    async def flood() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=20) as http:
            url = f"{srv.api}/workers/Hold"
            return await asyncio.gather(*(http.post(url, json={"seconds": 60}) for _ in range(60)))

    answers = asyncio.run(flood())
    created = [r for r in answers if r.status_code == 201]
    refused = [r for r in answers if r.status_code == 429]
    assert len(created) == 6  # one running, five waiting
    assert len(refused) == 54 and all(r.headers["Retry-After"] for r in refused)
    listed = httpx.get(f"{srv.api}/tasks", params={"worker": "Hold"}).json()["Tasks"]
    assert len(listed) == 6


# -- chains -------------------------------------------------------------------------------------
def _chain(steps: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "steps": [
            {"name": f"s{i}", "worker": "Echo", "config": {"value": "${params.x}"}}
            for i in range(steps)
        ],
        **extra,
    }


async def chain_count(client: httpx.AsyncClient) -> int:
    return len((await client.get(f"{API}/chains", params={"limit": 1000})).json()["Chains"])


async def test_oversized_chains_are_refused_and_create_nothing(client: httpx.AsyncClient) -> None:
    big = "x" * 2000
    refusals = [
        (_chain(parameters={"x": big}), 413, "parameters"),
        (_chain(parameters={"x": 1}, description="d" * 5000), 413, "definition"),
        (_chain(steps=6, parameters={"x": 1}), 422, "steps"),
    ]
    for body, code, word in refusals:
        r = await client.post(f"{API}/chains", json=body)
        assert r.status_code == code and word in r.json()["Error"], r.text
    r = await client.put(f"{API}/chain-definitions/big", json=_chain(description="d" * 5000))
    assert r.status_code == 413, r.text
    assert (await client.get(f"{API}/chain-definitions/big")).status_code == 404
    r = await client.put(f"{API}/chain-definitions/ok", json=_chain(parameters={"x": 1}))
    assert r.status_code == 201, r.text
    r = await client.post(f"{API}/chain-definitions/ok/start", json={"parameters": {"x": big}})
    assert r.status_code == 413 and "parameters" in r.json()["Error"], r.text
    assert await chain_count(client) == 0
    assert await task_ids(client, "Echo") == []
    # Under the caps, the same shapes work.
    r = await client.post(f"{API}/chains", json=_chain(steps=5, parameters={"x": "y" * 900}))
    assert r.status_code == 201, r.text
    r = await client.post(f"{API}/chain-definitions/ok/start", json={"parameters": {"x": 2}})
    assert r.status_code == 201, r.text


async def test_a_chain_step_waits_for_room_in_the_queue(
    settings: Settings, registry: WorkerRegistry
) -> None:
    settings.max_queued = 1
    app: TaskyApp = build_app(settings, registry=registry)
    client: httpx.AsyncClient
    clients: AsyncIterator[httpx.AsyncClient] = _open_client(app)
    client = await anext(clients)
    try:
        ids = await fill(client, "Hold", 1)
        r = await client.post(
            f"{API}/chains",
            json={"steps": [{"name": "h", "worker": "Hold", "config": {"seconds": 0}}]},
        )
        assert r.status_code == 201, r.text
        chain_id = r.json()["ChainId"]
        await asyncio.sleep(0.3)
        assert sorted(await task_ids(client, "Hold")) == sorted(ids)  # the step waits
        body = (await client.get(f"{API}/chains/{chain_id}")).json()
        assert body["Status"] == "Running", body
        for task_id in ids:
            await action(client, task_id, "cancel")
        for _ in range(150):  # bounded: the runner looks again every second
            body = (await client.get(f"{API}/chains/{chain_id}")).json()
            if body["Status"] != "Running":
                break
            await asyncio.sleep(0.1)
        assert body["Status"] == "Completed", body
    finally:
        await clients.aclose()
