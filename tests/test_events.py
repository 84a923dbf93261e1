"""GET /tasky/v1/events: the SSE stream, against real servers (uvicorn on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn

from tasky.api import TaskyApp
from tasky.api.events import end_streams
from tasky.engine import Engine
from tasky.engine.events import EventHub
from tests.conftest import ServerProcess, free_port


@dataclass
class SseEvent:
    id: str | None = None
    event: str | None = None
    data: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)

    @property
    def json(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads("\n".join(self.data))
        return value


class BlockReader:
    """Lines of an SSE stream in, blocks out (events, and blocks holding only comments or an
    id): one reader for the blocking and the async stream."""

    def __init__(self) -> None:
        self.block = SseEvent()

    def feed(self, line: str) -> SseEvent | None:
        """The block ``line`` ends (a blank line ends one), else None."""
        block = self.block
        if line == "":
            self.block = SseEvent()
            return block if block.data or block.comments or block.id is not None else None
        if line.startswith(":"):
            block.comments.append(line[1:].strip())
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            block.data.append(value)
        elif name == "event":
            block.event = value
        elif name == "id":
            block.id = value
        return None


def parse_blocks(lines: Iterator[str]) -> Iterator[SseEvent]:
    """Blocks of an SSE stream (events, and blocks holding only comments or an id)."""
    reader = BlockReader()
    for line in lines:
        block = reader.feed(line)
        if block is not None:
            yield block


async def aparse_blocks(response: httpx.Response) -> AsyncIterator[SseEvent]:
    reader = BlockReader()
    async for line in response.aiter_lines():
        block = reader.feed(line)
        if block is not None:
            yield block


def events_until(
    response: httpx.Response, stop: Any, limit: int = 500
) -> tuple[list[SseEvent], list[SseEvent]]:
    """Read until ``stop(event_json)`` is true; returns (data events, all blocks)."""
    got: list[SseEvent] = []
    blocks: list[SseEvent] = []
    for block in parse_blocks(response.iter_lines()):
        blocks.append(block)
        if block.data:
            got.append(block)
            if stop(block.json) or len(got) >= limit:
                break
    return got, blocks


def submit(server: ServerProcess, worker: str, config: dict[str, Any]) -> str:
    r = httpx.post(f"{server.api}/workers/{worker}", json=config)
    assert r.status_code == 201, r.text
    task_id: str = r.json()["TaskId"]
    return task_id


def test_a_task_life_as_events(server: ServerProcess) -> None:
    with (
        httpx.Client(timeout=20) as client,
        client.stream("GET", f"{server.api}/events", params={"worker": "sleeper"}) as r,
    ):
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["cache-control"] == "no-cache"
        task_id = submit(server, "Sleeper", {"seconds": 1.5})
        got, _ = events_until(
            r, lambda e: e["type"] == "task.status" and e["status"] == "Completed"
        )
    kinds = [e.json["type"] for e in got]
    assert kinds[0] == "task.created"
    assert "task.progress" in kinds and "task.log" in kinds
    for block in got:
        body = block.json
        assert block.event == body["type"]
        assert body["task"] == task_id and body["worker"] == "Sleeper"
        assert "chain" in body and body["chain"] is None
    created = got[0].json
    assert created["status"] in ("Queued", "Running")
    logs = [e.json["line"] for e in got if e.json["type"] == "task.log"]
    assert "slept 1 of 1.5 seconds" in logs
    progress = [e.json["progress"] for e in got if e.json["type"] == "task.progress"]
    assert progress == sorted(progress) and progress[-1] == 1.0
    # Ids are EPOCH:N with N increasing by event, one epoch for the whole stream.
    epochs = {b.id.split(":")[0] for b in got if b.id}
    numbers = [int(b.id.split(":")[1]) for b in got if b.id]
    assert len(epochs) == 1 and numbers == sorted(numbers) and len(set(numbers)) == len(numbers)


def test_filters(server: ServerProcess) -> None:
    with httpx.Client(timeout=20) as client:
        before = submit(server, "Echo", {"value": 1})  # done before the streams: must not show
        wait_done(server, before)
        with (
            client.stream("GET", f"{server.api}/events", params={"worker": "echo"}) as by_worker,
            client.stream(
                "GET", f"{server.api}/events", params={"type": "task.status,task.created"}
            ) as by_type,
        ):
            hold_id = submit(server, "Hold", {"seconds": 1})
            echo_id = submit(server, "Echo", {"value": 2})
            with client.stream("GET", f"{server.api}/events", params={"task": hold_id}) as by_task:
                got_task, _ = events_until(
                    by_task, lambda e: e["type"] == "task.status" and e["status"] == "Completed"
                )
            got_worker, _ = events_until(
                by_worker, lambda e: e["type"] == "task.status" and e["status"] == "Completed"
            )
            got_type, _ = events_until(
                by_type,
                lambda e: e["task"] == hold_id and e.get("status") == "Completed",
            )
    assert {e.json["task"] for e in got_task} == {hold_id}
    assert {e.json["task"] for e in got_worker} == {echo_id}
    assert {e.json["worker"] for e in got_worker} == {"Echo"}
    assert "task.log" in {e.json["type"] for e in got_worker}
    assert {e.json["type"] for e in got_type} <= {"task.status", "task.created"}
    assert {hold_id, echo_id} <= {e.json["task"] for e in got_type}
    assert before not in {e.json["task"] for e in got_worker + got_type}


@pytest.mark.parametrize(
    ("query", "code", "needle"),
    [
        ({"task": "nope"}, 400, "not a task id"),
        ({"worker": "NoSuchWorker"}, 404, "no worker named"),
        ({"heartbeat": "0"}, 400, "heartbeat"),
        ({"heartbeat": "soon"}, 400, "heartbeat"),
    ],
)
def test_bad_filters_are_json_errors(
    server: ServerProcess, query: dict[str, str], code: int, needle: str
) -> None:
    r = httpx.get(f"{server.api}/events", params=query)
    assert r.status_code == code
    assert needle in r.json()["Error"]


def test_resume_with_last_event_id_misses_nothing(server: ServerProcess) -> None:
    with httpx.Client(timeout=20) as client:
        with client.stream("GET", f"{server.api}/events", params={"worker": "echo"}) as r:
            first = submit(server, "Echo", {"value": "a"})
            got, _ = events_until(r, lambda e: e.get("status") == "Completed")
        last_id = got[-1].id
        assert last_id is not None
        # While nobody listens, more happens.
        missed = [submit(server, "Echo", {"value": n}) for n in range(3)]
        for task_id in missed:
            wait_done(server, task_id)
        headers = {"Last-Event-ID": last_id}
        with client.stream(
            "GET", f"{server.api}/events", params={"worker": "echo"}, headers=headers
        ) as r:
            again, _ = events_until(
                r, lambda e: e["task"] == missed[-1] and e.get("status") == "Completed"
            )
    assert first not in {e.json["task"] for e in again}  # nothing twice
    for task_id in missed:
        kinds = [e.json["type"] for e in again if e.json["task"] == task_id]
        assert kinds[0] == "task.created" and kinds[-1] == "task.status"
    numbers = [int(e.id.split(":")[1]) for e in again if e.id]
    assert numbers[0] > int(last_id.split(":")[1])


def wait_done(server: ServerProcess, task_id: str) -> None:
    for _ in range(500):
        status = httpx.get(f"{server.api}/tasks/{task_id}/status").json()["Status"]
        if status in ("Completed", "Failed", "Canceled"):
            return
        time.sleep(0.02)
    raise AssertionError(f"task {task_id} did not finish")


def test_chain_filter_and_replay_of_a_whole_chain(server: ServerProcess) -> None:
    chain = {
        "steps": [
            {"name": "one", "worker": "Echo", "config": {"value": 1}},
            {"name": "two", "worker": "Echo", "config": {"value": 2}},
        ]
    }
    with httpx.Client(timeout=20) as client:
        with client.stream("GET", f"{server.api}/events", params={"type": "chain.created"}) as r:
            created = client.post(f"{server.api}/chains", json=chain)
            assert created.status_code == 201, created.text
            got, _ = events_until(r, lambda e: True)
        chain_id = created.json()["ChainId"]
        assert got[0].json == {"type": "chain.created", "chain": chain_id, "status": "Running"}
        for _ in range(500):
            if client.get(f"{server.api}/chains/{chain_id}").json()["Status"] == "Completed":
                break
            time.sleep(0.02)
        # Everything of that chain again, from just before it was created.
        epoch, number = (got[0].id or "").split(":")
        with client.stream(
            "GET",
            f"{server.api}/events",
            params={"chain": chain_id},
            headers={"Last-Event-ID": f"{epoch}:{int(number) - 1}"},
        ) as r:
            again, _ = events_until(
                r, lambda e: e["type"] == "chain.status" and e["status"] == "Completed"
            )
    assert {e.json["chain"] for e in again} == {chain_id}
    kinds = [e.json["type"] for e in again]
    assert kinds[0] == "chain.created" and kinds.count("task.created") == 2
    assert {e.json["worker"] for e in again if e.json["type"] == "task.created"} == {"Echo"}


def test_an_id_from_another_run_resets(server: ServerProcess) -> None:
    with (
        httpx.Client(timeout=20) as client,
        client.stream("GET", f"{server.api}/events", headers={"Last-Event-ID": "0123abcd:42"}) as r,
    ):
        got, _ = events_until(r, lambda e: True)
    assert got[0].event == "stream.reset"
    assert "not from this run" in got[0].json["reason"]


def test_heartbeat_comments_carry_the_position(server: ServerProcess) -> None:
    with (
        httpx.Client(timeout=20) as client,
        client.stream(
            "GET", f"{server.api}/events", params={"heartbeat": "0.2", "worker": "hold"}
        ) as r,
    ):
        wait_done(server, submit(server, "Echo", {"value": "not for this stream"}))
        blocks: list[SseEvent] = []
        for block in parse_blocks(r.iter_lines()):
            blocks.append(block)
            if block.comments == ["keep-alive"] and int((block.id or "x:0").split(":")[1]) > 0:
                break
            assert len(blocks) < 100, "no keep-alive moved the position"
    assert not [b for b in blocks if b.data]  # the Echo task's events were filtered out
    # A fresh server starts at 0: the keep-alive moved the position past the skipped events,
    # so a reconnect will not ask for them.
    assert blocks[-1].comments == ["keep-alive"]


def test_hub_drops_a_reader_that_cannot_keep_up() -> None:
    async def scenario() -> None:
        hub = EventHub(history=100, queue_size=3)
        slow = hub.subscribe()
        for n in range(5):
            hub.publish("task.log", task="t", line=str(n))
        # The reader is told to go (end marker), and the history still has everything.
        assert hub.subscribers == 0
        assert await slow.get() is None
        assert [e["line"] for _, e in hub.since(0)] == ["0", "1", "2", "3", "4"]

    asyncio.run(scenario())


# -- in-process server: what happens to the subscriptions -------------------------------------
@contextlib.asynccontextmanager
async def running(app: TaskyApp) -> AsyncIterator[tuple[str, uvicorn.Server]]:
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/tasky/v1", server
    finally:
        server.should_exit = True
        await task


async def test_closing_the_stream_unsubscribes(app: TaskyApp) -> None:
    async with running(app) as (api, _), httpx.AsyncClient(timeout=10) as client:
        engine: Engine = app.state.engine
        for _ in range(3):
            async with client.stream("GET", f"{api}/events") as r:
                async for block in aparse_blocks(r):
                    assert block.comments == ["connected"]
                    break
                assert engine.events.subscribers == 1
        for _ in range(100):  # the server notices the disconnect on its own schedule
            if engine.events.subscribers == 0:
                break
            await asyncio.sleep(0.02)
        assert engine.events.subscribers == 0


async def test_end_streams_finishes_open_streams_cleanly(app: TaskyApp) -> None:
    async with (
        running(app) as (api, _),
        httpx.AsyncClient(timeout=10) as client,
        client.stream("GET", f"{api}/events") as r,
    ):
        blocks = aparse_blocks(r)
        first = await anext(blocks)
        assert first.comments == ["connected"]
        end_streams(app.state.engine)
        # The body ends properly (no error for a cut-off chunked body) and nothing follows.
        rest = [b async for b in blocks]
        assert rest == []


def test_sigterm_ends_streams_cleanly(server_factory: Any) -> None:
    server: ServerProcess = server_factory()
    with (
        httpx.Client(timeout=20) as client,
        client.stream("GET", f"{server.api}/events") as r,
    ):
        lines = r.iter_lines()
        assert next(lines).startswith("retry:")
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)
        # Without end_streams the server would cancel the response after its graceful timeout
        # and httpx would raise on the cut-off body; here the stream simply ends.
        rest = list(lines)
    assert all(not line.startswith("data:") for line in rest)
    server.proc.wait(15)  # uvicorn re-raises SIGTERM once it has shut down: the code is -15
    assert "graceful shutdown exceeded" not in server.read_log()
