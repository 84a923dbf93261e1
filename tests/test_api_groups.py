"""create_app and its route groups: the task API stands alone; groups are served and installed."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import State
from starlette.requests import Request
from starlette.routing import Route

from tasky.api import RouteGroup, create_app
from tasky.http.doc import Doc
from tasky.http.responses import JSONResponse
from tasky.settings import Settings
from tasky.workers.registry import WorkerRegistry
from tests.conftest import _open_client
from tests.helpers import API, submit, wait_for


async def test_the_task_api_stands_without_route_groups(
    settings: Settings, registry: WorkerRegistry
) -> None:
    async for client in _open_client(create_app(settings, registry=registry)):
        task_id = await submit(client, "Echo", {"value": 1})
        assert (await wait_for(client, task_id, "Completed"))["Status"] == "Completed"
        for path in (f"{API}/chains", f"{API}/schedules", "/tasky/ui", "/metrics"):
            assert (await client.get(path)).status_code == 404, path
        paths = (await client.get(f"{API}/openapi.json")).json()["paths"]
        assert f"{API}/tasks/{{id}}" in paths and f"{API}/tokens" in paths
        assert not any(p.startswith((f"{API}/chain", f"{API}/schedules")) for p in paths)


async def test_groups_are_served_documented_and_installed_in_order(
    settings: Settings, registry: WorkerRegistry
) -> None:
    started: list[str] = []

    async def hello(request: Request) -> JSONResponse:
        return JSONResponse({"Hello": request.app.state.greeting})

    def install_first(state: State) -> None:
        state.greeting = "first"

        async def start(engine: Any) -> None:
            started.append("first")

        state.startup_hooks.append(start)

    def install_second(state: State) -> None:
        # Installed after the first group: what it set up is there.
        state.greeting += ", then second"

        async def start(engine: Any) -> None:
            started.append("second")

        state.startup_hooks.append(start)

    # A path that tasky.auth.policy knows: the guard refuses routes it has no rule for.
    groups = [
        RouteGroup(
            routes=[Route("/metrics", hello, methods=["GET"])],
            docs=[("GET", "/metrics", Doc("Say hello", tags=("test",)))],
            install=install_first,
        ),
        RouteGroup(install=install_second),
    ]
    async for client in _open_client(create_app(settings, groups, registry=registry)):
        assert started == ["first", "second"]
        answer = await client.get("/metrics")
        assert answer.json() == {"Hello": "first, then second"}
        paths = (await client.get(f"{API}/openapi.json")).json()["paths"]
        assert paths["/metrics"]["get"]["summary"] == "Say hello"
