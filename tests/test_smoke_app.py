from __future__ import annotations

import asyncio

import httpx


async def wait_status(
    client: httpx.AsyncClient, task_id: str, *wanted: str, timeout: float = 10
) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        body = (await client.get(f"/tasky/v1/tasks/{task_id}/status")).json()
        if body["Status"] in wanted:
            return body
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"task stayed {body['Status']}, wanted {wanted}")
        await asyncio.sleep(0.02)


async def test_submit_and_result(client: httpx.AsyncClient) -> None:
    r = await client.post("/tasky/v1/workers/echo", json={"value": "hi"})
    assert r.status_code == 201
    task_id = r.json()["TaskId"]
    await wait_status(client, task_id, "Completed")
    result = (await client.get(f"/tasky/v1/tasks/{task_id}/result")).json()
    assert result["Output"] == {"string_output": "hi"}
