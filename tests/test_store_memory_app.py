"""The API, the engine and the chain runner on the in-memory store (``create_store("memory:")``),
the store for tests where storage is not the point."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx

from tasky.api import create_app
from tasky.settings import Settings
from tasky.store import Store, create_store
from tasky.workers.registry import WorkerRegistry
from tests.helpers import API, submit, wait_for
from tests.test_chains_api import chain_tasks, start_chain, wait_chain


@contextlib.asynccontextmanager
async def serving(
    settings: Settings, registry: WorkerRegistry, store: Store
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, registry=registry, store=store)
    async with app.starlette.router.lifespan_context(app.starlette):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield client


async def test_a_task_runs_to_its_result_and_nothing_reaches_a_disk(
    settings: Settings, registry: WorkerRegistry
) -> None:
    async with serving(settings, registry, create_store("memory:")) as client:
        task_id = await submit(client, "Echo", {"value": {"a": 1}})
        await wait_for(client, task_id, "Completed")
        result = await client.get(f"{API}/tasks/{task_id}/result")
        assert result.json()["Output"] == {"a": 1}
        detail = (await client.get(f"{API}/tasks/{task_id}")).json()
        assert [a["Status"] for a in detail["Attempts"]] == ["Completed"]
    assert not settings.database_path.exists()


async def test_a_queued_task_waits_for_the_slot_and_can_be_canceled(
    settings: Settings, registry: WorkerRegistry
) -> None:
    async with serving(settings, registry, create_store("memory:")) as client:
        holding = await submit(client, "Hold", {"seconds": 30})
        await wait_for(client, holding, "Running")
        waiting = await submit(client, "Hold", {"seconds": 0})
        await wait_for(client, waiting, "Queued")
        r = await client.post(f"{API}/tasks/{waiting}/actions", json={"action": "cancel"})
        assert r.status_code == 200 and r.json()["Status"] == "Canceled"
        await client.post(f"{API}/tasks/{holding}/actions", json={"action": "cancel"})
        await wait_for(client, holding, "Canceled")


async def test_a_chain_passes_outputs_between_its_steps(
    settings: Settings, registry: WorkerRegistry
) -> None:
    definition = {
        "steps": [
            {"name": "first", "worker": "Echo", "config": {"value": {"n": 7}}},
            {
                "name": "second",
                "worker": "Echo",
                "config": {"value": "got ${steps.first.result.n}"},
            },
        ]
    }
    async with serving(settings, registry, create_store("memory:")) as client:
        chain_id = await start_chain(client, definition)
        await wait_chain(client, chain_id, "Completed")
        tasks = await chain_tasks(client, chain_id)
        assert len(tasks) == 2
        last = await client.get(f"{API}/tasks/{tasks[-1]['TaskId']}/result")
        assert last.json()["Output"] == {"string_output": "got 7"}


async def test_an_engine_started_again_on_the_same_store_finds_its_tasks(
    settings: Settings, registry: WorkerRegistry
) -> None:
    store = create_store("memory:")
    async with serving(settings, registry, store) as client:
        first = await submit(client, "Echo", {"value": 1})
        await wait_for(client, first, "Completed")
    async with serving(settings, registry, store) as client:
        await wait_for(client, first, "Completed")
        second = await submit(client, "Echo", {"value": 2})
        await wait_for(client, second, "Completed")
        listed = (await client.get(f"{API}/tasks")).json()["Tasks"]
        assert {t["TaskId"] for t in listed} == {first, second}
