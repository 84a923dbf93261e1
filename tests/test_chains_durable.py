"""Chains survive restarts: a real server killed with SIGKILL mid-chain, and the exact states a
crash can leave between "step recorded" and "task created" (crafted in the SQLite file)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, field_serializer

from tasky import clock, worker
from tasky.chains.validate import check_definition
from tasky.ids import new_id
from tasky.server import build_app
from tasky.settings import Settings
from tasky.states import Status
from tasky.store import SqliteStore, TaskRecord
from tasky.store.chain_base import ChainStore
from tasky.store.chain_records import ChainRecord, StepRecord
from tasky.store.records import Claim, Outcome
from tasky.workers.registry import WorkerRegistry
from tests.test_chains_api import chain_tasks, steps_of, wait_chain, wait_step

WORKER_ARGS = ("--workers", "tasky.workers.examples", "--workers", "tests.workers_for_tests")


def _get(url: str) -> dict[str, Any]:
    r = httpx.get(url, timeout=10)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _wait(api: str, chain_id: str, check: Any, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = _get(f"{api}/chains/{chain_id}")
        if check(body):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"chain did not get there: {body}")
        time.sleep(0.05)


def _runs(marks: Path) -> Counter[str]:
    return Counter(marks.read_text().split()) if marks.exists() else Counter()


def test_chain_survives_kill_9(server_factory: Any, tmp_path: Path) -> None:
    marks = tmp_path / "marks.txt"
    server = server_factory(*WORKER_ARGS)
    r = httpx.post(
        f"{server.api}/chains",
        json={
            "parameters": {"marks": str(marks)},
            "steps": [
                {"name": "a", "worker": "Mark", "config": {"path": "${params.marks}"}},
                {
                    "name": "group",
                    "parallel": [
                        # Not safe to re-run: a crash fails it. Safe: a crash re-runs it.
                        {
                            "name": "x",
                            "worker": "Mark",
                            "config": {"path": "${params.marks}", "seconds": 3},
                        },
                        {
                            "name": "y",
                            "worker": "MarkAgain",
                            "config": {"path": "${params.marks}", "seconds": 3},
                        },
                    ],
                },
                {"name": "c", "worker": "Mark", "config": {"path": "${params.marks}"}},
            ],
        },
        timeout=10,
    )
    assert r.status_code == 201, r.text
    chain_id = r.json()["ChainId"]
    body = _wait(
        server.api,
        chain_id,
        lambda b: (
            steps_of(b)["x"]["Status"] == "Running" and steps_of(b)["y"]["Status"] == "Running"
        ),
    )
    ids = {name: step["TaskId"] for name, step in steps_of(body).items()}
    server.kill()

    again = server_factory(*WORKER_ARGS, data_dir=server.data_dir)
    body = _wait(again.api, chain_id, lambda b: b["Status"] not in ("Running", "Paused"))
    steps = steps_of(body)
    assert body["Status"] == "Failed"
    assert steps["a"]["Status"] == "Completed"
    assert steps["x"]["Status"] == "Failed"
    assert "not safe to re-run" in steps["x"]["Error"]
    assert steps["y"]["Status"] == "Completed"
    assert steps["y"]["Attempt"] == 2  # re-run after the crash: its worker allows it
    assert steps["c"]["Status"] == "Skipped"
    assert {name: step["TaskId"] for name, step in steps.items() if name != "c"} == {
        name: task for name, task in ids.items() if name != "c"
    }
    assert _runs(marks) == {ids["a"]: 1, ids["x"]: 1, ids["y"]: 2}

    r = httpx.post(f"{again.api}/chains/{chain_id}/actions", json={"action": "restart"}, timeout=10)
    assert r.status_code == 200, r.text
    body = _wait(again.api, chain_id, lambda b: b["Status"] == "Completed")
    steps = steps_of(body)
    assert steps["x"]["Attempt"] == 2
    runs = _runs(marks)
    assert runs == {ids["a"]: 1, ids["x"]: 2, ids["y"]: 2, steps["c"]["TaskId"]: 1}
    listed = _get(f"{again.api}/tasks?chain={chain_id}")["Tasks"]
    assert len(listed) == 4  # one task per step, whatever happened


# -- crash windows, crafted in the database ------------------------------------------------------
@contextlib.asynccontextmanager
async def running(settings: Settings, registry: WorkerRegistry) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(settings, registry=registry)
    async with app.starlette.router.lifespan_context(app.starlette):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield client


@contextlib.asynccontextmanager
async def stores(settings: Settings) -> AsyncIterator[tuple[SqliteStore, ChainStore]]:
    tasks = SqliteStore(settings.database_path)
    await tasks.open()
    try:
        yield tasks, tasks.chains
    finally:
        await tasks.close()


async def _craft(
    chains: ChainStore,
    registry: WorkerRegistry,
    raw: dict[str, Any],
    status: Status = Status.RUNNING,
    **states: tuple[str, str | None],
) -> str:
    """A chain as a crash left it: ``states`` gives (state, task id) of some steps."""
    spec = check_definition(raw, registry, parameters={})
    chain = ChainRecord(new_id(), spec.model_dump(mode="json"), {}, status, clock.now())
    steps = []
    for position, step in enumerate(raw["steps"]):
        record = StepRecord(chain.id, step["name"], position)
        if step["name"] in states:
            record.state, record.task_id = states[step["name"]]  # type: ignore[assignment]
        steps.append(record)
    await chains.create(chain, steps)
    return chain.id


TWO_STEPS = {
    "steps": [
        {"name": "a", "worker": "Echo", "config": {"value": "A"}},
        {"name": "b", "worker": "Echo", "config": {"value": "${steps.a.result.string_output}!"}},
    ]
}


async def test_recorded_step_without_task_is_submitted_once(
    settings: Settings, registry: WorkerRegistry
) -> None:
    # The crash came after the step's id was committed and before its task was.
    task_id = new_id()
    async with stores(settings) as (_, chains):
        chain_id = await _craft(chains, registry, TWO_STEPS, a=("submitted", task_id))
    async with running(settings, registry) as client:
        body = await wait_chain(client, chain_id, "Completed")
        assert steps_of(body)["a"]["TaskId"] == task_id
        assert body["Result"] == {"string_output": "A!"}
        tasks = await chain_tasks(client, chain_id)
        assert tasks[0]["TaskId"] == task_id
        assert len(tasks) == 2


async def test_existing_task_is_followed_not_duplicated(
    settings: Settings, registry: WorkerRegistry
) -> None:
    # The crash came after the task was created (and even finished) but before the chain moved on.
    task_id = new_id()
    now = clock.now()
    async with stores(settings) as (tasks, chains):
        chain_id = await _craft(chains, registry, TWO_STEPS, a=("submitted", task_id))
        record = TaskRecord(
            task_id, "Echo", Status.QUEUED, {"value": "A"}, now, chain_id=chain_id, queued_at=now
        )
        started = await tasks.submit(record, Claim("crashed-node", now + 30, limit=10))
        assert started.status is Status.RUNNING
        done = Outcome(Status.COMPLETED, now, result={"string_output": "A"})
        assert await tasks.finish(task_id, "crashed-node", 1, done)
    async with running(settings, registry) as client:
        body = await wait_chain(client, chain_id, "Completed")
        steps = steps_of(body)
        assert steps["a"]["TaskId"] == task_id
        assert steps["a"]["Attempt"] == 1
        assert steps["b"]["Output"] == {"string_output": "A!"}
        assert len(await chain_tasks(client, chain_id)) == 2


async def test_an_id_chosen_ahead_is_the_one_its_task_gets(
    settings: Settings, registry: WorkerRegistry
) -> None:
    # The crash came while step a ran: b's id was chosen ahead (b still pending).
    ahead = new_id()
    async with stores(settings) as (_, chains):
        chain_id = await _craft(chains, registry, TWO_STEPS, b=("pending", ahead))
    async with running(settings, registry) as client:
        body = await wait_chain(client, chain_id, "Completed")
        assert steps_of(body)["b"]["TaskId"] == ahead
        assert body["Result"] == {"string_output": "A!"}
        assert len(await chain_tasks(client, chain_id)) == 2


async def test_a_task_created_before_its_step_was_marked_is_followed(
    settings: Settings, registry: WorkerRegistry
) -> None:
    # The crash came after the task of step a (id chosen ahead) was created, before the write
    # that marks a started: a shows its task and is not started again.
    task_id = new_id()
    now = clock.now()
    async with stores(settings) as (tasks, chains):
        chain_id = await _craft(chains, registry, TWO_STEPS, a=("pending", task_id))
        record = TaskRecord(
            task_id, "Echo", Status.QUEUED, {"value": "A"}, now, chain_id=chain_id, queued_at=now
        )
        await tasks.submit(record)
        assert await tasks.chains.step_counts(chain_id) == {"Queued": 1, "Pending": 1}
    async with running(settings, registry) as client:
        body = await wait_chain(client, chain_id, "Completed")
        steps = steps_of(body)
        assert steps["a"]["TaskId"] == task_id
        assert steps["b"]["Output"] == {"string_output": "A!"}
        assert len(await chain_tasks(client, chain_id)) == 2


async def test_cancel_reaches_tasks_after_a_crash(
    settings: Settings, registry: WorkerRegistry
) -> None:
    # The chain's cancel was committed; the crash came before its queued task was canceled.
    task_id = new_id()
    async with stores(settings) as (tasks, chains):
        chain_id = await _craft(
            chains,
            registry,
            {"steps": [{"name": "h", "worker": "Hold", "config": {"seconds": 30}}]},
            Status.CANCELED,
            h=("submitted", task_id),
        )
        await tasks.submit(
            TaskRecord(
                task_id, "Hold", Status.QUEUED, {"seconds": 30}, clock.now(), chain_id=chain_id
            )
        )
    async with running(settings, registry) as client:
        body = await wait_chain(client, chain_id, "Canceled")
        for _ in range(500):
            status = (await client.get(f"/tasky/v1/tasks/{task_id}/status")).json()["Status"]
            if status == "Canceled":
                break
            await _sleep()
        assert status == "Canceled"
        assert steps_of(body)["h"]["TaskId"] == task_id


async def test_paused_chain_stays_paused_across_restart(
    settings: Settings, registry: WorkerRegistry, tmp_path: Path
) -> None:
    marks = str(tmp_path / "marks.txt")
    raw = {
        "steps": [
            {"name": "h", "worker": "MarkAgain", "config": {"path": marks, "seconds": 30}},
            {"name": "after", "worker": "Echo"},
        ]
    }
    async with running(settings, registry) as client:
        r = await client.post("/tasky/v1/chains", json=raw)
        chain_id = r.json()["ChainId"]
        await wait_step(client, chain_id, "h", "Running")
        r = await client.post(f"/tasky/v1/chains/{chain_id}/actions", json={"action": "pause"})
        assert steps_of(r.json())["h"]["Status"] == "Paused"
    async with running(settings, registry) as client:
        body = await wait_chain(client, chain_id, "Paused")
        # MarkAgain is safe to re-run: recovery re-queues it; the paused chain holds it again.
        for _ in range(500):
            body = await wait_chain(client, chain_id, "Paused")
            if steps_of(body)["h"]["Status"] == "Paused":
                break
            await _sleep()
        assert steps_of(body)["h"]["Status"] == "Paused"
        assert steps_of(body)["h"]["Attempt"] == 2  # its interrupted run was re-queued
        assert steps_of(body)["after"]["Status"] == "Pending"
        r = await client.post(f"/tasky/v1/chains/{chain_id}/actions", json={"action": "cancel"})
        assert r.json()["Status"] == "Canceled"


async def _sleep() -> None:
    await asyncio.sleep(0.01)


_hiccups: set[str] = set()


class OnceConfig(BaseModel):
    key: str

    @field_serializer("key")
    def _fail_once(self, key: str) -> str:
        # The first submit of each key breaks inside the engine, as a failing disk would.
        if key not in _hiccups:
            _hiccups.add(key)
            raise RuntimeError("hiccup")
        return key


@worker("Hiccup", config=OnceConfig)
async def hiccup(config: OnceConfig, task: Any) -> str:
    return config.key


async def test_a_failed_pass_is_retried(
    settings: Settings, registry: WorkerRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    registry.register(hiccup)
    async with running(settings, registry) as client:
        r = await client.post(
            "/tasky/v1/chains",
            json={"steps": [{"name": "h", "worker": "Hiccup", "config": {"key": new_id()}}]},
        )
        chain_id = r.json()["ChainId"]
        body = await wait_chain(client, chain_id, "Completed")
        step = steps_of(body)["h"]
        assert step["Attempt"] == 1
        assert len(await chain_tasks(client, chain_id)) == 1
    retries = [r.getMessage() for r in caplog.records if r.name == "tasky.chains"]
    assert retries == [f"advancing chain {chain_id} failed; trying again in 1 s"]


@worker("Stubborn", description="Thread work that notices a cancel only when it is done.")
def stubborn(config: Any, task: Any) -> str:
    time.sleep(1)
    return "done anyway"


async def test_cancel_answers_202_while_a_step_is_stopping(
    settings: Settings, registry: WorkerRegistry
) -> None:
    registry.register(stubborn)
    settings.cancel_wait_seconds = 0.1
    async with running(settings, registry) as client:
        r = await client.post(
            "/tasky/v1/chains",
            json={"steps": [{"name": "s", "worker": "Stubborn"}, {"name": "e", "worker": "Echo"}]},
        )
        chain_id = r.json()["ChainId"]
        await wait_step(client, chain_id, "s", "Running")
        r = await client.post(f"/tasky/v1/chains/{chain_id}/actions", json={"action": "cancel"})
        assert r.status_code == 202
        assert r.json()["Status"] == "Canceled"
        assert steps_of(r.json())["s"]["Status"] == "Running"
        body = await wait_step(client, chain_id, "s", "Completed", "Canceled")
        assert body["Status"] == "Canceled"
        assert steps_of(body)["e"]["Status"] == "Canceled"
        assert len(await chain_tasks(client, chain_id)) == 1
