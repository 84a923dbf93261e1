"""GET /tasky/v1/events: the engine's task (and chain) events as a Server-Sent Events stream.

Each event goes out as ``id: EPOCH:N``, ``event: TYPE`` and one ``data:`` line of JSON. EPOCH names
one run of the engine: event numbers restart with the server, so a client that reconnects with a
Last-Event-ID from an earlier run gets a ``stream.reset`` event (refetch what you show) instead of
silently missing everything. The same happens when the events it missed are no longer retained.
"""

from __future__ import annotations

import asyncio
import secrets
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from tasky.api.openapi import Doc
from tasky.api.query import ascii_int, float_param, only_documented
from tasky.api.responses import ApiError
from tasky.api.stream_caps import StreamCaps
from tasky.auth import principal_of
from tasky.echo import shown
from tasky.engine import Engine
from tasky.engine.events import Event, EventHub
from tasky.ids import is_valid_id

PATH = "/tasky/v1/events"
DEFAULT_HEARTBEAT = 15.0
# Events written per chunk when many are waiting: fewer, larger writes under load.
_BATCH = 256
# Browsers wait this long (ms) before reconnecting after the stream ends.
_RETRY_MS = 2000

DOC = Doc(
    "Server-Sent Events: task and chain changes as they happen",
    errors=(400, 404, 429, 503),
    query=(
        ("task", "string", "Only events of these tasks (comma-separated ids)."),
        ("worker", "string", "Only events of tasks of this worker."),
        ("chain", "string", "Only events of this chain and its steps."),
        ("type", "string", "Only these event types or prefixes (comma-separated: task.log,chain)."),
        ("heartbeat", "number", "Seconds between keep-alive comments (default 15)."),
        ("last_event_id", "string", "Resume after this event id (as the Last-Event-ID header)."),
    ),
    tags=("events",),
    stream=(
        "text/event-stream",
        "One event per change: `id: EPOCH:N`, `event: TYPE`, `data: JSON` with type, task, "
        "worker, chain and the change; `: keep-alive` comments between.",
    ),
)

# One epoch per hub (per engine run). Weak keys: two apps in one process never share one.
_epochs: weakref.WeakKeyDictionary[EventHub, str] = weakref.WeakKeyDictionary()


def epoch_of(hub: EventHub) -> str:
    epoch = _epochs.get(hub)
    if epoch is None:
        epoch = _epochs[hub] = secrets.token_hex(4)
    return epoch


def routes() -> list[BaseRoute]:
    return [Route(PATH, only_documented(stream_events, DOC.query), methods=["GET"])]


def docs() -> list[tuple[str, str, Doc]]:
    return [("GET", PATH, DOC)]


def end_streams(engine: Engine | None) -> None:
    """End every open stream now (server shutdown), so they do not hold the graceful shutdown."""
    if engine is not None:
        engine.events.close()


EventFilter = Callable[[Event], bool]


def _split(raw: str | None) -> list[str]:
    return [part.strip() for part in (raw or "").split(",") if part.strip()]


def build_filter(request: Request, engine: Engine) -> EventFilter:
    """Every given filter must match; a filter left out matches everything."""
    params = request.query_params
    tasks = frozenset(_split(params.get("task")))
    for task_id in tasks:
        if not is_valid_id(task_id):
            raise ApiError(400, f"query parameter task: {shown(task_id)} is not a task id")
    worker = engine.worker(params["worker"]).name if params.get("worker") else None
    chain = params.get("chain") or None
    kinds = tuple(_split(params.get("type")))

    def wanted(event: Event) -> bool:
        if tasks and event.get("task") not in tasks:
            return False
        if worker is not None and event.get("worker") != worker:
            return False
        if chain is not None and event.get("chain") != chain:
            return False
        kind: str = event.get("type", "")
        return not kinds or any(kind == k or kind.startswith(k + ".") for k in kinds)

    return wanted


def _heartbeat(request: Request) -> float:
    value = float_param(request, "heartbeat", 0.1, 300, DEFAULT_HEARTBEAT)
    assert value is not None  # a default is given
    return value


def parse_last_id(raw: str | None, epoch: str) -> int | None:
    """The event number to resume after; None if ``raw`` is absent; -1 if it cannot be honoured.

    ``EPOCH:N`` from this run resumes after N; a bare ``N`` is taken as this run's (handy with
    curl); an id from another run is -1 (the client must start over). N must be ASCII digits:
    anything else is no id this server ever sent (400).
    """
    if raw is None or raw == "":
        return None
    given_epoch, sep, number = raw.rpartition(":")
    value = ascii_int(number)
    if value is None:
        raise ApiError(400, f"Last-Event-ID must look like EPOCH:N, not {shown(raw)}")
    if sep and given_epoch != epoch:
        return -1
    return value


def format_event(epoch: str, event_id: int, event: Event) -> bytes:
    kind = event.get("type", "message")
    data = orjson.dumps(event).decode()
    return f"id: {epoch}:{event_id}\nevent: {kind}\ndata: {data}\n\n".encode()


def _reset(epoch: str, last_id: int, reason: str) -> bytes:
    event: dict[str, Any] = {"type": "stream.reset", "reason": reason}
    return format_event(epoch, last_id, event)


def _replay(
    hub: EventHub, epoch: str, resume_after: int | None, wanted: EventFilter
) -> tuple[list[bytes], int]:
    """What the client missed, and the last event number it now has (live events above it)."""
    last = hub.last_id
    if resume_after is None:
        return [], last
    if resume_after < 0 or resume_after > last:
        return [_reset(epoch, last, "the event id is not from this run of the server")], last
    missed = hub.since(resume_after)
    first = missed[0][0] if missed else last + 1
    if first != resume_after + 1:
        return [_reset(epoch, last, "some missed events are no longer kept")], last
    return [format_event(epoch, i, e) for i, e in missed if wanted(e)], last


class _CappedStream(StreamingResponse):
    """Gives its slot back however the response ends, even before the body ever started."""

    def __init__(self, body: AsyncIterator[bytes], caps: StreamCaps, principal: str) -> None:
        super().__init__(
            body,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self._caps = caps
        self._principal = principal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._caps.release(self._principal)


async def stream_events(request: Request) -> Response:
    engine: Engine = request.app.state.engine
    wanted = build_filter(request, engine)
    heartbeat = _heartbeat(request)
    caps: StreamCaps = request.app.state.stream_caps
    principal = principal_of(request.scope).name
    refusal = caps.acquire(principal)
    if refusal is not None:
        return refusal
    hub = engine.events
    epoch = epoch_of(hub)
    resume_after = parse_last_id(
        request.headers.get("last-event-id") or request.query_params.get("last_event_id"), epoch
    )
    # Subscribe before reading the history: nothing published in between can fall in the gap.
    queue = hub.subscribe()
    try:
        replay, seen = _replay(hub, epoch, resume_after, wanted)
    except BaseException:
        hub.unsubscribe(queue)
        caps.release(principal)
        raise

    async def body() -> AsyncIterator[bytes]:
        nonlocal seen
        try:
            yield f"retry: {_RETRY_MS}\n: connected\n\n".encode()
            for chunk in replay:
                yield chunk
            while True:
                try:
                    async with asyncio.timeout(heartbeat):
                        item = await queue.get()
                except TimeoutError:
                    # With an id, a filtered stream's Last-Event-ID keeps up with the events it
                    # skipped, so a reconnect does not ask for history that is gone.
                    yield f": keep-alive\nid: {epoch}:{seen}\n\n".encode()
                    continue
                batch = [item]
                while len(batch) < _BATCH and not queue.empty():
                    batch.append(queue.get_nowait())
                out: list[bytes] = []
                for entry in batch:
                    if entry is None:  # the hub closed (shutdown) or dropped a slow reader
                        if out:
                            yield b"".join(out)
                        return
                    event_id, event = entry
                    if event_id > seen:
                        seen = event_id
                        if wanted(event):
                            out.append(format_event(epoch, event_id, event))
                if out:
                    yield b"".join(out)
        finally:
            # Runs on a normal end and when the client goes away (the generator is closed).
            hub.unsubscribe(queue)

    return _CappedStream(body(), caps, principal)
