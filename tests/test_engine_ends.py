"""Runs that end in one turn of the event loop are recorded with one store write
(Store.finish_many) and announced as each would be alone; a run with something to do first or
after (a retry, a chain's step, log lines to write) still ends on its own."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, ConfigDict

from tasky import AsyncTaskContext, worker
from tasky.api import TaskyApp
from tasky.engine import Engine
from tasky.engine.background import Background
from tasky.engine.dispatch import Dispatcher
from tasky.engine.lanes import Lane
from tasky.settings import Settings
from tasky.store.records import AttemptEnd, Claim, Outcome, TaskRecord
from tasky.workers.registry import WorkerRegistry
from tests.helpers import API, wait_for

GATE: dict[str, asyncio.Event] = {}


@worker("Trio", description="Three at a time, all released together.", max_tasks=3)
async def trio(config: Any, task: AsyncTaskContext) -> str:
    await GATE["open"].wait()
    task.log("done")  # a log line: written before the task's end
    return "ok"


class QuietConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fail: bool = False


@worker(
    "Quiet", description="Three at a time, all released together.", config=QuietConfig, max_tasks=3
)
async def quiet(config: QuietConfig, task: AsyncTaskContext) -> str:
    await GATE["open"].wait()
    if config.fail:
        raise ValueError("asked to")
    return "ok"


@pytest.fixture
def registry(registry: WorkerRegistry) -> WorkerRegistry:
    registry.register(trio)
    registry.register(quiet)
    registry.register(pair)
    return registry


@pytest.fixture
async def writes(app: TaskyApp, client: httpx.AsyncClient) -> list[list[str]]:
    """The task ids of every end the engine records from now on, one list per store write."""
    GATE["open"] = asyncio.Event()
    engine: Engine = app.state.engine
    seen: list[list[str]] = []
    finish, finish_many = engine.store.finish, engine.store.finish_many

    async def one(
        task_id: str, owner: str, attempt: int, outcome: Outcome, lazy: bool = False
    ) -> bool:
        seen.append([task_id])
        return await finish(task_id, owner, attempt, outcome, lazy)

    async def many(ends: Sequence[AttemptEnd], lazy: bool = False) -> list[bool]:
        seen.append([end.task_id for end in ends])
        return await finish_many(ends, lazy)

    engine.store.finish = one  # type: ignore[method-assign]
    engine.store.finish_many = many  # type: ignore[method-assign]
    return seen


async def _submit(client: httpx.AsyncClient, name: str, configs: list[dict[str, Any]]) -> list[str]:
    answer = await client.post(f"{API}/workers/{name}/batch", json=configs)
    assert answer.status_code == 201, answer.text
    ids: list[str] = answer.json()["TaskIds"]
    return ids


async def test_runs_that_end_together_are_recorded_in_one_write(
    client: httpx.AsyncClient, writes: list[list[str]]
) -> None:
    ids = await _submit(client, "Quiet", [{}, {"fail": True}, {}])
    for task_id in ids:
        await wait_for(client, task_id, "Running")
    GATE["open"].set()
    for task_id, wanted in zip(ids, ["Completed", "Failed", "Completed"], strict=True):
        await wait_for(client, task_id, wanted)
    assert writes == [ids]
    results = [(await client.get(f"{API}/tasks/{i}/result")).json() for i in ids]
    assert [r.get("Output") for r in results] == [
        {"string_output": "ok"},
        {},
        {"string_output": "ok"},
    ]
    assert "asked to" in results[1]["Error"]
    stats = (await client.get(f"{API}/workers/Quiet/statistics")).json()["ByStatus"]
    assert (stats["Completed"], stats["Failed"], stats["Running"]) == (2, 1, 0)


async def test_runs_with_log_lines_to_write_end_one_by_one(
    client: httpx.AsyncClient, writes: list[list[str]]
) -> None:
    ids = await _submit(client, "Trio", [{}, {}, {}])
    for task_id in ids:
        await wait_for(client, task_id, "Running")
    GATE["open"].set()
    for task_id in ids:
        await wait_for(client, task_id, "Completed")
        logs = (await client.get(f"{API}/tasks/{task_id}/logs")).json()
        assert "done" in str(logs)
    assert sorted(writes) == sorted([i] for i in ids)


@worker("Pair", description="Two at a time, all released together.", max_tasks=2)
async def pair(config: Any, task: AsyncTaskContext) -> str:
    await GATE["open"].wait()
    return "ok"


async def test_ends_with_tasks_waiting_claim_the_slots_they_free_in_their_commit(
    app: TaskyApp, client: httpx.AsyncClient, writes: list[list[str]]
) -> None:
    engine: Engine = app.state.engine
    claims: list[tuple[int | None, int]] = []  # (count, ends answered when the claim was made)
    answered: list[str] = []
    claim, finish_many = engine.store.claim, engine.store.finish_many

    async def recording(worker: str, wanted: Claim, at: float) -> list[TaskRecord]:
        claims.append((wanted.count, len(answered)))
        return await claim(worker, wanted, at)

    async def many(ends: Sequence[AttemptEnd], lazy: bool = False) -> list[bool]:
        moved = await finish_many(ends, lazy)
        answered.extend(end.task_id for end in ends)
        return moved

    engine.store.claim = recording  # type: ignore[method-assign]
    engine.store.finish_many = many  # type: ignore[method-assign]
    first = await _submit(client, "Pair", [{}, {}])
    waiting = await _submit(client, "Pair", [{}, {}])
    for task_id in first:
        await wait_for(client, task_id, "Running")
    GATE["open"].set()
    for task_id in first + waiting:
        await wait_for(client, task_id, "Completed")
    # The claim of the two that waited was made with the ends of the first two, before their
    # answer, asking for the two slots they free.
    assert writes[0] == first
    assert (2, 0) in claims


class _Store:
    def __init__(self, ordered: bool) -> None:
        self.ordered_writes = ordered
        self.counts: list[int | None] = []

    async def claim(self, worker: str, wanted: Claim, at: float) -> list[TaskRecord]:
        self.counts.append(wanted.count)
        return []

    async def next_runnable_at(self, worker: str, targets: Any = None) -> float | None:
        return None


class _Launcher:
    def launch_claimed(self, lane: Lane, records: list[TaskRecord]) -> None:
        assert records == []


@pytest.mark.parametrize(("ordered", "asked"), [(True, 3), (False, 1)])
async def test_a_claim_counts_ending_slots_only_on_a_store_that_writes_in_order(
    settings: Settings, ordered: bool, asked: int
) -> None:
    store = _Store(ordered)
    dispatcher = Dispatcher(store, settings, Background())  # type: ignore[arg-type]
    lane = Lane(pair, dispatcher.dispatch)
    dispatcher.attach({"Pair": lane}, _Launcher())  # type: ignore[arg-type]
    lane.slots.start(reserved=False)  # one of two slots in use, two more ending elsewhere
    lane.hint = True
    lane.dispatch(ending=2)
    assert lane.claiming is not None
    await lane.claiming
    assert store.counts == [asked]
