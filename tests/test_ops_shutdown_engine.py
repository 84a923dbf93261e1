"""Draining, in process: what the engine refuses, keeps doing and waits for while it drains."""

from __future__ import annotations

import math
import time

import httpx
import pytest

from tasky.api import TaskyApp
from tasky.engine import Engine
from tasky.settings import Settings
from tests.helpers import API, action, status, submit, wait_for


def engine_of(app: TaskyApp) -> Engine:
    engine: Engine = app.state.engine
    return engine


async def test_new_work_gets_503_with_retry_after_and_reads_go_on(
    app: TaskyApp, client: httpx.AsyncClient
) -> None:
    done = await submit(client, "Echo", {"value": 1})
    await wait_for(client, done, "Completed")
    engine_of(app).drain(30)
    refusals = [
        await client.post(f"{API}/workers/Echo", json={"value": 2}),
        await action(client, done, "run"),
        await client.post(f"{API}/chains", json={"steps": [{"name": "a", "worker": "Echo"}]}),
    ]
    for r in refusals:
        assert r.status_code == 503, r.text
        assert r.headers["content-type"] == "application/json"
        assert "shutting down" in r.json()["Error"]
        assert 1 <= int(r.headers["Retry-After"]) <= 30
    assert (await status(client, done))["Status"] == "Completed"
    listed = (await client.get(f"{API}/tasks")).json()["Tasks"]
    assert [t["TaskId"] for t in listed] == [done]


async def test_draining_dispatches_nothing_new(app: TaskyApp, client: httpx.AsyncClient) -> None:
    # Hold runs one at a time: the second waits in the queue and must stay there.
    first = await submit(client, "Hold", {"seconds": 0.3})
    waiting = await submit(client, "Hold", {"seconds": 0.3})
    await wait_for(client, first, "Running")
    engine_of(app).drain(30)
    assert await engine_of(app).wait_idle(10)
    assert (await status(client, first))["Status"] == "Completed"
    assert (await status(client, waiting))["Status"] == "Queued"


async def test_a_paused_task_does_not_hold_the_drain(
    app: TaskyApp, client: httpx.AsyncClient
) -> None:
    task_id = await submit(client, "Hold", {"seconds": 60})
    await wait_for(client, task_id, "Running")
    assert (await action(client, task_id, "pause")).status_code == 200
    running = await submit(client, "Spin", {"seconds": 60})
    await wait_for(client, running, "Running")
    engine = engine_of(app)
    engine.drain(30)
    assert engine.busy() == 1  # Spin; the paused Hold does not count
    assert not await engine.wait_idle(0.2)
    assert (await action(client, running, "cancel")).status_code in (200, 202)
    began = time.monotonic()
    assert await engine.wait_idle(10)
    assert time.monotonic() - began < 5


@pytest.mark.parametrize("grace", [-1.0, math.nan, 1e9])
def test_grace_out_of_range_is_refused(settings: Settings, grace: float) -> None:
    settings.grace = grace
    with pytest.raises(ValueError, match="--grace"):
        settings.check()
