"""Run time counts running time only, through a real engine and SQLite store; Queued tasks say where
they stand in their worker's queue."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.helpers import API, action, status, submit, wait_for

PAUSE = 1.0  # how long the tests hold a task Paused (run time must leave it out)


async def _detail(client: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    r = await client.get(f"{API}/tasks/{task_id}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def _statistics(client: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    r = await client.get(f"{API}/task/{task_id}/statistics")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def _pause_for_a_while(client: httpx.AsyncClient, task_id: str) -> None:
    """Pause a running task, check its run time stands still while Paused, leave it Paused."""
    await wait_for(client, task_id, "Running")
    assert (await action(client, task_id, "pause")).json()["Status"] == "Paused"
    first = await _detail(client, task_id)
    assert first["PausedAt"] is not None
    await asyncio.sleep(PAUSE)
    later = await _detail(client, task_id)
    assert later["Status"] == "Paused"
    # Not a second of the pause shows: the figure is the same, read a second apart.
    assert later["DurationSeconds"] == first["DurationSeconds"]
    assert (await _statistics(client, task_id))["RunTimeSeconds"] == first["DurationSeconds"]


async def test_a_paused_tasks_run_time_leaves_the_pause_out(client: httpx.AsyncClient) -> None:
    task_id = await submit(client, "Hold", {"seconds": 0.5})
    await _pause_for_a_while(client, task_id)
    assert (await action(client, task_id, "resume")).json()["Status"] == "Running"
    await wait_for(client, task_id, "Completed")

    detail = await _detail(client, task_id)
    elapsed = detail["FinishedAt"] - detail["StartedAt"]
    assert detail["PausedAt"] is None and detail["PausedSeconds"] >= PAUSE
    assert detail["DurationSeconds"] < elapsed - 0.8
    [attempt] = detail["Attempts"]
    assert attempt["PausedSeconds"] == detail["PausedSeconds"]
    stats = await _statistics(client, task_id)
    assert stats["RunTimeSeconds"] == detail["DurationSeconds"]
    assert stats["TotalRunTimeSeconds"] == stats["RunTimeSeconds"]
    assert stats["Attempts"][0]["RunTimeSeconds"] == stats["RunTimeSeconds"]
    # The summary in the task list and the worker's statistics count the same.
    listed = (await client.get(f"{API}/tasks", params={"worker": "Hold"})).json()["Tasks"]
    assert [t["DurationSeconds"] for t in listed if t["TaskId"] == task_id] == [
        detail["DurationSeconds"]
    ]
    worker = (await client.get(f"{API}/workers/hold/statistics")).json()
    assert worker["TasksPerformed"] == 1
    assert worker["AverageRunTimeSeconds"] < elapsed - 0.8
    assert worker["RunTimePercentilesSeconds"]["p50"] < elapsed - 0.8
    [bucket] = worker["RunTimeHistogram"]
    assert bucket["FromSeconds"] < elapsed - 0.8


async def test_a_task_canceled_while_paused_ran_until_its_pause(client: httpx.AsyncClient) -> None:
    task_id = await submit(client, "Hold", {"seconds": 30})
    await _pause_for_a_while(client, task_id)
    paused = await _detail(client, task_id)
    await action(client, task_id, "cancel")
    await wait_for(client, task_id, "Canceled")
    detail = await _detail(client, task_id)
    elapsed = detail["FinishedAt"] - detail["StartedAt"]
    assert detail["DurationSeconds"] < elapsed - 0.8
    assert detail["DurationSeconds"] == paused["DurationSeconds"]
    stats = await _statistics(client, task_id)
    assert stats["Attempts"][0]["RunTimeSeconds"] == paused["DurationSeconds"]
    worker = (await client.get(f"{API}/workers/hold/statistics")).json()
    assert worker["AverageRunTimeSeconds"] < elapsed - 0.8


async def test_queued_tasks_show_their_place_in_the_queue(client: httpx.AsyncClient) -> None:
    blocker = await submit(client, "Hold", {"seconds": 30})  # Hold runs one task at a time
    await wait_for(client, blocker, "Running")
    queued = [await submit(client, "Hold", {"seconds": 0}) for _ in range(3)]
    other = await submit(client, "Hold", {"seconds": 0})
    assert (await action(client, other, "pause")).json()["Status"] == "Paused"

    async def positions() -> list[Any]:
        return [(await status(client, task_id))["QueuePosition"] for task_id in queued]

    assert await positions() == [1, 2, 3]
    assert [(await _detail(client, t))["QueuePosition"] for t in queued] == [1, 2, 3]
    listed = (await client.get(f"{API}/tasks", params={"worker": "Hold"})).json()["Tasks"]
    shown = {t["TaskId"]: t["QueuePosition"] for t in listed}
    assert shown == {blocker: None, **dict(zip(queued, [1, 2, 3], strict=True)), other: None}
    assert (await status(client, blocker))["QueuePosition"] is None

    await action(client, queued[0], "cancel")
    assert await positions() == [None, 1, 2]
    # Resumed, the held task joins at the end.
    assert (await action(client, other, "resume")).json()["Status"] == "Queued"
    assert (await status(client, other))["QueuePosition"] == 3
    await action(client, blocker, "cancel")
    for task_id in (*queued[1:], other):
        await wait_for(client, task_id, "Completed")
    assert await positions() == [None, None, None]


async def test_a_chain_steps_duration_leaves_its_pause_out(client: httpx.AsyncClient) -> None:
    r = await client.post(
        f"{API}/chains",
        json={"steps": [{"name": "hold", "worker": "Hold", "config": {"seconds": 0.5}}]},
    )
    assert r.status_code == 201, r.text
    chain_id = r.json()["ChainId"]

    async def step() -> dict[str, Any]:
        body = (await client.get(f"{API}/chains/{chain_id}")).json()
        found: dict[str, Any] = body["Steps"][0]
        return found

    deadline = asyncio.get_running_loop().time() + 15
    while (await step())["TaskId"] is None:
        assert asyncio.get_running_loop().time() < deadline, "the step never got a task"
        await asyncio.sleep(0.02)
    task_id = (await step())["TaskId"]
    await _pause_for_a_while(client, task_id)
    paused = await step()
    assert paused["PausedAt"] is not None
    assert (await action(client, task_id, "resume")).json()["Status"] == "Running"
    await wait_for(client, task_id, "Completed")
    while (done := await step())["Status"] != "Completed":
        assert asyncio.get_running_loop().time() < deadline + 15, done
        await asyncio.sleep(0.02)
    assert done["PausedSeconds"] >= PAUSE
    assert done["DurationSeconds"] < done["FinishedAt"] - done["StartedAt"] - 0.8
