"""A single submit over HTTP is answered before its task is announced and launched.

The bookkeeping after the commit (the worker's counters, the ``task.created`` event, the task's
launch or the dispatcher's wake-up) runs in the event loop's next step, so the answer leaves
without waiting for it. These tests pin both halves: the answer comes first, and the
bookkeeping still happens, before anything the next request on the connection asks for.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson

from tasky.api.app import TaskyApp
from tasky.client import Client
from tests.conftest import ServerProcess

HOLD = "/tasky/v1/workers/Hold"


def _scope(path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", b"2"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def test_the_answer_starts_before_the_task_is_announced_or_launched(
    app: TaskyApp, client: httpx.AsyncClient
) -> None:
    engine = app.state.engine
    counters = engine.counters("Hold")
    events = engine.events
    before = events.last_id
    at_answer: list[tuple[int, int]] = []
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            at_answer.append((counters.submitted, events.last_id))
        sent.append(message)

    await app(_scope(HOLD), receive, send)

    assert sent[0]["status"] == 201
    task_id = orjson.loads(sent[1]["body"])["TaskId"]
    # Stored and committed (the answer names it), but not yet counted nor announced.
    assert at_answer == [(0, before)]
    for _ in range(3):  # the loop's next step runs the bookkeeping
        await asyncio.sleep(0)
    assert counters.submitted == 1
    created = [e for _, e in events.since(before) if e["type"] == "task.created"]
    assert [(e["task"], e["status"]) for e in created] == [(task_id, "Running")]
    # Launched: Hold holds its one slot until cancelled, and a cancel stops it now.
    answer = await client.post(f"/tasky/v1/tasks/{task_id}/cancel")
    assert answer.status_code in (200, 202), answer.text
    for _ in range(200):
        status = (await client.get(f"/tasky/v1/tasks/{task_id}/status")).json()["Status"]
        if status == "Canceled":
            break
        await asyncio.sleep(0.01)
    assert status == "Canceled"


def test_a_cancel_sent_right_after_the_submit_on_one_connection_stops_the_task(
    server: ServerProcess,
) -> None:
    """The real server (uvloop): the deferred launch runs before the next request is read, so
    a cancel right behind the submit finds the task started and stops it, every time."""
    with Client(server.url) as tasky:
        for _ in range(20):
            task_id = tasky.submit("Hold", {"seconds": 30})
            tasky.cancel(task_id)
            assert tasky.wait(task_id, timeout=10).status == "Canceled"
