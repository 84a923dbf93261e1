"""Submit and status skip Starlette's router (tasky/api/app.py _fast_routes): same answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tasky.api import TaskyApp
from tests.helpers import API


@pytest.fixture
async def plain(app: TaskyApp, client: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """The same running app reached through Starlette alone (no fast routes, no path rewrite)."""
    transport = httpx.ASGITransport(app=app.starlette)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
        yield c


def _shape(response: httpx.Response) -> tuple[int, Any, str | None, list[tuple[str, str]]]:
    body = response.json()
    if isinstance(body, dict) and "TaskId" in body and response.status_code == 201:
        body = sorted(body)  # a new id each time: compare the keys
    location = response.headers.get("location")
    # Every other header, in order, with its value (a task id is always 32 characters long).
    others = [(k, v) for k, v in response.headers.multi_items() if k != "location"]
    return (
        response.status_code,
        body,
        None if location is None else location.rsplit("/", 1)[0],
        others,
    )


# Raw bodies declare JSON: the request guard in front of both paths answers 415 otherwise.
_JSON = {"content-type": "application/json"}
SUBMITS: list[tuple[str, dict[str, Any]]] = [
    ("/workers/Sleeper", {"json": {"seconds": 30}}),
    ("/workers/sleeper", {"content": b"", "headers": _JSON}),
    ("/workers/Sleeper", {"json": {"seconds": -1}}),
    ("/workers/Sleeper", {"json": {"nope": 1}}),
    ("/workers/Sleeper", {"json": [1, 2]}),
    ("/workers/Sleeper", {"content": b"{not json", "headers": _JSON}),
    ("/workers/Sleeper?timeout=abc", {"json": {}}),
    ("/workers/Sleeper?retries=-1", {"json": {}}),
    ("/workers/Sleeper?timeout=5&retries=2", {"json": {}}),
    # The query's names are checked only when there is a query string (tasky/api/app.py).
    ("/workers/Sleeper?", {"json": {}}),
    ("/workers/Sleeper?timout=5", {"json": {}}),
    ("/workers/Sleeper?retries=1&retries=2", {"json": {}}),
    ("/workers/Sleeper?&", {"json": {}}),
    ("/workers/Sleeper", {"content": b'{"seconds": 30}', "headers": _JSON}),
    ("/workers/Sleeper", {"content": b"  ", "headers": _JSON}),
    ("/workers/NoSuchWorker", {"json": {}}),
    ("/workers/Sleeper", {"content": b"x" * (2 << 20), "headers": _JSON}),
]


@pytest.mark.parametrize(("path", "kwargs"), SUBMITS)
async def test_submit_answers_as_through_starlette(
    client: httpx.AsyncClient, plain: httpx.AsyncClient, path: str, kwargs: dict[str, Any]
) -> None:
    fast = await client.post(API + path, **kwargs)
    slow = await plain.post(API + path, **kwargs)
    assert _shape(fast) == _shape(slow)


async def test_status_answers_as_through_starlette(
    client: httpx.AsyncClient, plain: httpx.AsyncClient
) -> None:
    task_id = (await client.post(f"{API}/workers/Sleeper", json={"seconds": 30})).json()["TaskId"]
    for path in (
        f"/tasks/{task_id}/status",
        f"/tasks/{task_id.upper()}/status",
        "/tasks/0123456789abcdef0123456789abcdef/status",
        "/tasks/not-an-id/status",
        f"/tasks/{task_id}/status?",
        f"/tasks/{task_id}/status?verbose=1",
    ):
        fast = await client.get(API + path)
        slow = await plain.get(API + path)
        assert _shape(fast) == _shape(slow), path
    assert (await client.get(f"{API}/tasks/{task_id}/status")).json()["Status"] in (
        "Queued",
        "Running",
    )


async def test_spellings_and_methods_still_reach_the_right_place(client: httpx.AsyncClient) -> None:
    created = await client.post(f"{API}/workers/Sleeper/", json={"seconds": 30})
    assert created.status_code == 201
    task_id = created.json()["TaskId"]
    for path in (f"/task/{task_id}/status", f"/tasks/{task_id}/status/"):
        answer = await client.get(API + path)
        assert answer.status_code == 200
        assert answer.json()["TaskId"] == task_id
    # Not the fast routes' shapes: Starlette answers, as before.
    assert (await client.put(f"{API}/workers/Sleeper", json={})).status_code == 405
    assert (await client.head(f"{API}/tasks/{task_id}/status")).status_code == 200
    assert (await client.post(f"{API}/workers/Sleeper/info")).status_code == 405
    assert (await client.get(f"{API}/tasks//status")).status_code == 404


async def test_unexpected_errors_are_json_500(
    app: TaskyApp, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = app.state.engine

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(engine, "submit", broken)
    answer = await client.post(f"{API}/workers/Sleeper", json={})
    assert answer.status_code == 500
    assert answer.json() == {"Error": "internal error; the server log has the details"}
