"""Small polling helpers shared by tests (never timing assertions, only deadlines)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

API = "/tasky/v1"


async def submit(client: httpx.AsyncClient, worker: str, config: Any = None, **query: Any) -> str:
    r = await client.post(f"{API}/workers/{worker}", json=config or {}, params=query)
    assert r.status_code == 201, r.text
    task_id: str = r.json()["TaskId"]
    return task_id


async def status(client: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    r = await client.get(f"{API}/tasks/{task_id}/status")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def wait_for(
    client: httpx.AsyncClient, task_id: str, *wanted: str, timeout: float = 15.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = await status(client, task_id)
        if body["Status"] in wanted:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"task {task_id} stayed {body}, wanted {wanted}")
        await asyncio.sleep(0.02)


async def wait_progress(client: httpx.AsyncClient, task_id: str, timeout: float = 15.0) -> float:
    deadline = time.monotonic() + timeout
    while True:
        body = await status(client, task_id)
        if (body.get("Progress") or 0) > 0:
            return float(body["Progress"])
        if time.monotonic() > deadline:
            raise AssertionError(f"task {task_id} made no progress: {body}")
        await asyncio.sleep(0.05)


async def action(client: httpx.AsyncClient, task_id: str, name: str) -> httpx.Response:
    return await client.post(f"{API}/task/{task_id}/actions", json={"action": name})


def wait_sync(api: str, task_id: str, *wanted: str, timeout: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = httpx.get(f"{api}/tasks/{task_id}/status").json()
        if body["Status"] in wanted:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"task {task_id} stayed {body}, wanted {wanted}")
        time.sleep(0.05)
