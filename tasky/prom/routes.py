"""``GET /metrics``: the Prometheus text exposition of this server.

Served at the top level, where Prometheus looks by default, and also as
``/tasky/v1/metrics/prometheus`` for setups that forward only ``/tasky/`` to the server. Both need
the viewer role. Each app owns its registry (no global one), so two servers in one process never
mix their numbers; ``GET /tasky/v1/metrics`` (JSON, dispatch latency) is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from tasky.http.doc import Doc
from tasky.http.query import only_documented
from tasky.prom.collector import TaskyCollector
from tasky.prom.snapshot import take

PATHS = ("/metrics", "/tasky/v1/metrics/prometheus")
# The format generate_latest writes (Prometheus text format 0.0.4).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

DOC = Doc(
    "Prometheus metrics in the text exposition format (see docs/metrics.md)",
    errors=(400,),
    tags=("server",),
    stream=(CONTENT_TYPE, "Tasks by worker and status, queues, run and wait times, commits"),
)


@dataclass(slots=True)
class Export:
    """One app's registry and the collector that formats each scrape's snapshot."""

    collector: TaskyCollector = field(default_factory=TaskyCollector)
    registry: CollectorRegistry = field(
        default_factory=lambda: CollectorRegistry(auto_describe=False)
    )

    def __post_init__(self) -> None:
        self.registry.register(self.collector)


def install(state: State) -> None:
    state.prometheus = Export()


def routes() -> list[BaseRoute]:
    handler = only_documented(scrape, DOC.query)
    return [Route(path, handler, methods=["GET"]) for path in PATHS]


def docs() -> list[tuple[str, str, Doc]]:
    return [("GET", path, DOC) for path in PATHS]


async def scrape(request: Request) -> Response:
    state = request.app.state
    export: Export = state.prometheus
    snapshot = await take(state.engine, state.stream_caps.open)
    # No await from here to the end: concurrent scrapes on the event loop cannot interleave.
    export.collector.snapshot = snapshot
    try:
        body = generate_latest(export.registry)
    finally:
        export.collector.snapshot = None
    return Response(body, media_type=CONTENT_TYPE, headers={"Cache-Control": "no-store"})
