"""Nodes on one SQLite server: the registry, targeted submits, ?nodes=all, refusals."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
import time

import httpx
import pytest

from tasky import clock
from tasky.api import TaskyApp
from tasky.engine import Engine
from tasky.engine.leftovers import process_state
from tasky.engine.nodes import NodeNameTaken
from tasky.settings import Settings
from tasky.store import MemoryStore, NodeRecord, create_store
from tasky.workers.registry import WorkerRegistry
from tests.helpers import API, submit, wait_for


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.node = "alpha"
    settings.labels = ["gpu", "eu"]
    return settings


async def detail(client: httpx.AsyncClient, task_id: str) -> dict[str, object]:
    r = await client.get(f"{API}/tasks/{task_id}")
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    return body


async def test_the_node_lists_itself_alive_with_labels_and_workers(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    r = await client.get(f"{API}/nodes")
    assert r.status_code == 200, r.text
    [node] = r.json()["Nodes"]
    assert node["Name"] == "alpha"
    assert node["Labels"] == ["gpu", "eu"]
    assert "Echo" in node["Workers"] and "Hold" in node["Workers"]
    assert node["Alive"] is True and node["StoppedAt"] is None
    assert node["RunningTasks"] == 0
    assert node["LastHeartbeat"] >= node["StartedAt"]
    held = await submit(client, "Hold", {"seconds": 30})
    await wait_for(client, held, "Running")
    [node] = (await client.get(f"{API}/nodes")).json()["Nodes"]
    assert node["RunningTasks"] == 1
    await client.post(f"{API}/tasks/{held}/cancel")


async def test_a_task_targeted_at_this_node_or_its_label_runs_and_shows_it(
    client: httpx.AsyncClient,
) -> None:
    by_name = await submit(client, "Echo", {"value": 1}, node="alpha")
    by_label = await submit(client, "Echo", {"value": 2}, label="gpu")
    anywhere = await submit(client, "Echo", {"value": 3})
    for task_id in (by_name, by_label, anywhere):
        await wait_for(client, task_id, "Completed")
    first, second, third = [await detail(client, t) for t in (by_name, by_label, anywhere)]
    assert (first["Target"], first["Node"]) == ("node:alpha", "alpha")
    assert (second["Target"], second["Node"]) == ("label:gpu", "alpha")
    assert (third["Target"], third["Node"]) == (None, "alpha")
    assert [a["Node"] for a in first["Attempts"]] == ["alpha"]  # type: ignore[union-attr]
    listed = (await client.get(f"{API}/tasks", params={"worker": "Echo"})).json()["Tasks"]
    assert {t["TaskId"]: t.get("Target") for t in listed}[by_label] == "label:gpu"
    assert all(t["Node"] == "alpha" for t in listed)


async def test_a_target_no_live_node_matches_is_422_and_creates_nothing(
    client: httpx.AsyncClient,
) -> None:
    for query, named in (({"node": "beta"}, "named beta"), ({"label": "arm"}, "labelled arm")):
        r = await client.post(f"{API}/workers/Echo", json={}, params=query)
        assert r.status_code == 422, r.text
        assert named in r.json()["Error"] and "Echo" in r.json()["Error"]
    r = await client.post(f"{API}/workers/Echo/batch", json=[{}, {}], params={"node": "beta"})
    assert r.status_code == 422, r.text
    assert (await client.get(f"{API}/tasks")).json()["Tasks"] == []


async def test_wait_for_node_queues_the_task_and_it_blocks_nothing_here(
    client: httpx.AsyncClient,
) -> None:
    params = {"node": "beta", "wait_for_node": "true"}
    waiting = await submit(client, "Hold", {"seconds": 0}, **params)
    batch = await client.post(f"{API}/workers/Hold/batch", json=[{}], params=params)
    assert batch.status_code == 201, batch.text
    # Hold runs one at a time: the tasks waiting for beta must not keep this one from its slot.
    mine = await submit(client, "Hold", {"seconds": 0})
    await wait_for(client, mine, "Completed")
    body = await detail(client, waiting)
    assert (body["Status"], body["Target"], body["Node"]) == ("Queued", "node:beta", None)


async def test_nodes_all_makes_one_task_per_live_node(client: httpx.AsyncClient) -> None:
    r = await client.post(f"{API}/workers/Echo", json={"value": 7}, params={"nodes": "all"})
    assert r.status_code == 201, r.text
    tasks = r.json()["Tasks"]
    assert list(tasks) == ["alpha"]
    body = await wait_for(client, tasks["alpha"], "Completed")
    assert body["Status"] == "Completed"
    assert (await detail(client, tasks["alpha"]))["Target"] == "node:alpha"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"node": "a b"}, "query parameter node must be 1 to 64"),
        ({"node": ""}, "query parameter node must be"),
        ({"label": "x" * 65}, "query parameter label must be"),
        ({"node": "alpha", "label": "gpu"}, "node or label, not both"),
        ({"node": "alpha", "wait_for_node": "yes"}, "wait_for_node must be true or false"),
        ({"wait_for_node": "1"}, "wait_for_node must be true or false"),
        ({"nodes": "some"}, "nodes must be all"),
        ({"nodes": "all", "node": "alpha"}, "cannot be combined with node"),
    ],
)
async def test_bad_target_parameters_are_400(
    client: httpx.AsyncClient, query: dict[str, str], message: str
) -> None:
    r = await client.post(f"{API}/workers/Echo", json={}, params=query)
    assert r.status_code == 400, r.text
    assert message in r.json()["Error"]
    assert (await client.get(f"{API}/tasks")).json()["Tasks"] == []


async def test_a_repeated_or_unknown_target_parameter_is_400(client: httpx.AsyncClient) -> None:
    r = await client.post(f"{API}/workers/Echo?node=alpha&node=alpha", json={})
    assert r.status_code == 400 and "more than once" in r.json()["Error"]
    r = await client.post(f"{API}/workers/Echo/batch?nodes=all", json=[{}])
    assert r.status_code == 400 and "unknown query parameter" in r.json()["Error"]


async def test_the_node_is_marked_stopped_after_a_graceful_stop_and_may_start_again(
    app: TaskyApp, settings: Settings
) -> None:
    starlette = app.starlette
    async with starlette.router.lifespan_context(starlette):
        pass
    store = create_store(settings.store_url)
    await store.open()
    try:
        [node] = await store.list_nodes()
    finally:
        await store.close()
    assert (node.name, node.owner) == ("alpha", settings.node_id)
    assert node.stopped_at is not None
    async with starlette.router.lifespan_context(starlette):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            [again] = (await client.get(f"{API}/nodes")).json()["Nodes"]
    assert (again["Alive"], again["StoppedAt"]) == (True, None)


async def test_a_second_live_process_of_one_name_refuses_to_start(
    settings: Settings, registry: WorkerRegistry
) -> None:
    store = MemoryStore()
    await store.open()
    first = Engine(store, registry, settings)
    second = Engine(store, registry, dataclasses.replace(settings, node_id="alpha:2"))
    await first.start()
    try:
        with pytest.raises(NodeNameTaken, match="another live node is named alpha"):
            await second.start()
        await second.stop()
    finally:
        await first.stop()
    # Stopped gracefully: the name is free at once.
    third = Engine(store, registry, dataclasses.replace(settings, node_id="alpha:3"))
    await third.start()
    try:
        [(node, alive)] = await third.nodes()
        assert (node.owner, alive) == ("alpha:3", True)
    finally:
        await third.stop()
        await store.close()


async def test_a_restart_on_the_same_machine_takes_over_from_a_killed_process(
    settings: Settings, registry: WorkerRegistry
) -> None:
    """After kill -9 the name's heartbeat is fresh; its process is gone from this machine."""
    store = MemoryStore()
    await store.open()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    # Killed, and not reaped yet by its parent (a zombie): as dead as the other (a restart right
    # after kill -9 found the killed server in that state for over a second).
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 15
        while process_state(zombie.pid) != "Z":
            assert time.monotonic() < deadline, "the child did not end"
            await asyncio.sleep(0.01)
        now = clock.now()
        here = os.uname().nodename
        for pid, refused in ((os.getppid(), True), (dead.pid, False), (zombie.pid, False)):
            killed = NodeRecord("alpha", [], f"alpha:{pid}", ["Echo"], now, now, host=here, pid=pid)
            assert await store.register_node(killed, float("inf")) is None  # heartbeat: now
            engine = Engine(store, registry, settings)
            try:
                if refused:  # that process is alive: the name is its own
                    with pytest.raises(NodeNameTaken):
                        await engine.start()
                else:
                    await engine.start()
                    [(node, alive)] = await engine.nodes()
                    assert (node.owner, node.pid, alive) == (settings.node_id, os.getpid(), True)
            finally:
                await engine.stop()
    finally:
        await store.close()
        zombie.wait()


async def test_a_keyed_submit_with_a_target_is_checked_once_and_replayed(
    client: httpx.AsyncClient,
) -> None:
    headers = {"Idempotency-Key": "k-1"}
    r = await client.post(f"{API}/workers/Echo", json={}, params={"node": "beta"}, headers=headers)
    assert r.status_code == 422, r.text
    first = await client.post(
        f"{API}/workers/Echo", json={}, params={"node": "alpha"}, headers=headers
    )
    assert first.status_code == 201, first.text
    again = await client.post(
        f"{API}/workers/Echo", json={}, params={"node": "alpha"}, headers=headers
    )
    assert (again.status_code, again.json()["TaskId"]) == (200, first.json()["TaskId"])
    other = await client.post(
        f"{API}/workers/Echo", json={}, params={"label": "gpu"}, headers=headers
    )
    assert other.status_code == 422, other.text  # the same key for another target
    assert "different request" in other.json()["Error"]
    r = await client.post(f"{API}/workers/Echo", json={}, params={"nodes": "all"}, headers=headers)
    assert r.status_code == 400 and "Idempotency-Key" in r.json()["Error"]


async def test_a_keyed_batch_with_a_target_is_replayed_and_keeps_its_target(
    client: httpx.AsyncClient,
) -> None:
    url, headers = f"{API}/workers/Echo/batch", {"Idempotency-Key": "b-1"}
    first = await client.post(url, json=[{}, {}], params={"label": "gpu"}, headers=headers)
    assert first.status_code == 201, first.text
    again = await client.post(url, json=[{}, {}], params={"label": "gpu"}, headers=headers)
    assert (again.status_code, again.json()) == (200, first.json())
    other = await client.post(url, json=[{}, {}], params={"node": "alpha"}, headers=headers)
    assert other.status_code == 422 and "different request" in other.json()["Error"]
    for task_id in first.json()["TaskIds"]:
        await wait_for(client, task_id, "Completed")
        assert (await detail(client, task_id))["Target"] == "label:gpu"
