"""tasky.AsyncClient against the real app in-process (httpx ASGITransport, real SQLite)."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from tasky import AsyncClient
from tasky.api import TaskyApp
from tasky.client import (
    Conflict,
    LogLine,
    NotFound,
    ServerUnreachable,
    TaskStatus,
    Unauthorized,
    ValidationFailed,
    WaitTimeout,
)
from tasky.server import build_app
from tasky.settings import Settings
from tasky.states import Status
from tasky.workers.registry import WorkerRegistry
from tests.conftest import free_port
from tests.workers_for_tests import EchoConfig, Hold


@pytest.fixture
async def tasky(app: TaskyApp) -> AsyncIterator[AsyncClient]:
    async with app.starlette.router.lifespan_context(app.starlette):
        transport = httpx.ASGITransport(app=app)
        async with AsyncClient("http://127.0.0.1", transport=transport) as client:
            yield client


async def test_workers_and_info(tasky: AsyncClient) -> None:
    names = [w.name for w in await tasky.workers()]
    assert {"Echo", "Hold", "Sleeper", "CopyFile"} <= set(names)
    info = await tasky.worker("sleeper")  # names are case-insensitive
    assert info.name == "Sleeper"
    assert info.config_schema["properties"]["seconds"]["type"] == "number"
    assert "pause" in info.actions
    assert (await tasky.worker(Hold)).max_tasks == 1  # a Worker class names itself
    with pytest.raises(NotFound, match="no worker named 'nope'"):
        await tasky.worker("nope")


async def test_submit_a_dict_or_the_config_model_and_wait(tasky: AsyncClient) -> None:
    first = await tasky.submit("Echo", {"value": "hi"})
    second = await tasky.submit("Echo", EchoConfig(value=[1, 2]))
    for task_id in (first, second):
        final = await tasky.wait(task_id, timeout=30)
        assert final.status is Status.COMPLETED and final.finished
    assert (await tasky.result(first)).output == {"string_output": "hi"}
    assert (await tasky.result(second)).output == {"value": [1, 2]}
    task = await tasky.get(second)
    assert task.worker == "Echo" and task.config == {"value": [1, 2]}
    assert task.wire()["TaskId"] == second  # wire names come back for --json
    logs = await tasky.logs(first)
    assert [line.line for line in logs.lines] == ["echo 'hi'"]
    stats = await tasky.task_statistics(first)
    assert stats.status is Status.COMPLETED and stats.attempt == 1
    assert [a["Status"] for a in stats.attempts] == ["Completed"]
    worker_stats = await tasky.worker_statistics("Echo")
    assert worker_stats.by_status["Completed"] == 2


async def test_validation_errors_carry_the_fields(tasky: AsyncClient) -> None:
    with pytest.raises(ValidationFailed) as exc:
        await tasky.submit("Sleeper", {"seconds": -1, "extra": 1})
    fields = {f.field: f.message for f in exc.value.fields}
    assert set(fields) == {"seconds", "extra"}
    assert "greater than or equal to 0" in fields["seconds"]
    assert exc.value.status_code == 422


async def test_conflict_tells_the_current_status(tasky: AsyncClient) -> None:
    task_id = await tasky.submit("Hold", {"seconds": 30})
    with pytest.raises(Conflict) as exc:
        await tasky.result(task_id)  # not finished yet
    assert exc.value.status in (Status.QUEUED, Status.RUNNING)
    assert (await tasky.cancel(task_id)).status is Status.CANCELED
    with pytest.raises(Conflict) as exc:
        await tasky.pause(task_id)
    assert exc.value.status is Status.CANCELED
    assert "cannot pause" in exc.value.message


async def test_pause_resume_cancel_run_and_update(tasky: AsyncClient) -> None:
    blocker = await tasky.submit("Hold", {"seconds": 30})
    queued = await tasky.submit("Hold", {"seconds": 30})  # Hold runs one at a time
    updated = await tasky.update(queued, {"seconds": 0})
    assert updated.config == {"seconds": 0}
    assert (await tasky.pause(queued)).status is Status.PAUSED
    assert (await tasky.resume(queued)).status is Status.QUEUED
    await tasky.cancel(blocker)
    assert (await tasky.wait(queued, timeout=30)).status is Status.COMPLETED
    assert (await tasky.wait(blocker, timeout=30)).status is Status.CANCELED
    assert (await tasky.run(queued)).status in (Status.QUEUED, Status.RUNNING)
    final = await tasky.wait(queued, timeout=30)
    assert final.status is Status.COMPLETED
    assert (await tasky.get(queued)).attempt == 2


async def test_iter_tasks_follows_the_cursor(tasky: AsyncClient) -> None:
    ids = [await tasky.submit("Echo", {"value": n}) for n in range(5)]
    await tasky.submit("Hold", {"seconds": 0})
    seen = [t.task_id async for t in tasky.iter_tasks(worker="Echo", page_size=2)]
    assert seen == ids  # oldest first, every page
    newest = [t.task_id async for t in tasky.iter_tasks(worker="echo", order="desc", page_size=4)]
    assert newest == ids[::-1]
    page = await tasky.list_tasks(worker="Echo", limit=2)
    assert len(page.tasks) == 2 and page.next_cursor is not None
    for task_id in ids:
        await tasky.wait(task_id, timeout=30)
    done = [t async for t in tasky.iter_tasks(status="completed", worker="Echo")]
    assert len(done) == 5 and all(t.status is Status.COMPLETED for t in done)


async def test_follow_gives_log_lines_then_the_final_status(tasky: AsyncClient) -> None:
    task_id = await tasky.submit("Sleeper", {"seconds": 1.2})
    items = [item async for item in tasky.follow(task_id, timeout=30)]
    lines = [item.line for item in items if isinstance(item, LogLine)]
    assert lines == ["slept 1 of 1.2 seconds", "slept 1.2 of 1.2 seconds"]
    statuses = [item for item in items if isinstance(item, TaskStatus)]
    assert statuses[-1].status is Status.COMPLETED
    assert isinstance(items[-1], TaskStatus)
    # Each status differs from the one before it: no duplicates are reported.
    assert all(a != b for a, b in itertools.pairwise(statuses))


async def test_wait_timeout_keeps_the_last_status(tasky: AsyncClient) -> None:
    task_id = await tasky.submit("Hold", {"seconds": 30})
    with pytest.raises(WaitTimeout) as exc:
        await tasky.wait(task_id, timeout=0.3)
    assert isinstance(exc.value, TimeoutError)
    assert exc.value.last is not None and exc.value.last.status is Status.RUNNING
    await tasky.cancel(task_id)


def _without_events(app: TaskyApp, seen: list[str]) -> object:
    """The app as an older server: no event stream (404), and every path recorded."""

    async def older(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            seen.append(scope["path"])
            if scope["path"].endswith("/events"):
                body = b'{"Error": "no such path"}'
                await send(
                    {
                        "type": "http.response.start",
                        "status": 404,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await app(scope, receive, send)

    return older


async def test_without_an_event_stream_wait_polls(app: TaskyApp) -> None:
    seen: list[str] = []
    async with app.starlette.router.lifespan_context(app.starlette):
        transport = httpx.ASGITransport(app=_without_events(app, seen))  # type: ignore[arg-type]
        async with AsyncClient("http://127.0.0.1", transport=transport, use_events=True) as tasky:
            first = await tasky.submit("Sleeper", {"seconds": 0.3})
            assert (await tasky.wait(first, timeout=30)).status is Status.COMPLETED
            second = await tasky.submit("Echo", {"value": 1})
            assert (await tasky.wait(second, timeout=30)).status is Status.COMPLETED
    # The stream was tried once; after its 404 the client polls and does not ask again.
    assert sum(path.endswith("/events") for path in seen) == 1
    assert sum(path.endswith(f"/tasks/{first}/status") for path in seen) >= 2


async def test_token(settings: Settings, registry: WorkerRegistry) -> None:
    app = build_app(dataclasses.replace(settings, token="s3cret"), registry=registry)
    async with app.starlette.router.lifespan_context(app.starlette):
        transport = httpx.ASGITransport(app=app)
        async with AsyncClient("http://127.0.0.1", transport=transport) as anonymous:
            with pytest.raises(Unauthorized, match="token"):
                await anonymous.workers()
        async with AsyncClient("http://127.0.0.1", transport=transport, token="s3cret") as tasky:
            assert await tasky.workers()


async def test_unreachable_server_names_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    async with AsyncClient(url) as tasky:
        with pytest.raises(ServerUnreachable) as exc:
            await tasky.workers()
    assert exc.value.url == url + "/tasky/v1"
    assert url in str(exc.value)


def test_urls() -> None:
    assert AsyncClient("http://h:1/").url == "http://h:1/tasky/v1"
    assert AsyncClient("http://h:1/tasky/v1/").url == "http://h:1/tasky/v1"
    with pytest.raises(ValueError, match="http://HOST:PORT"):
        AsyncClient("h:1")
