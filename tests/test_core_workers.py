"""The worker API: definitions are checked, disabled workers take no tasks, modules register."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from pydantic import BaseModel

from tasky import Worker, worker
from tasky.server import build_app
from tasky.settings import Settings
from tasky.workers.registry import WorkerRegistry


class Off(Worker):
    name = "Off"
    description = "Disabled."
    enabled = False

    async def perform(self, config: BaseModel, task: object) -> None:
        return None


async def test_disabled_worker_refuses_tasks(settings: Settings) -> None:
    registry = WorkerRegistry()
    registry.register(Off)
    app = build_app(settings, registry=registry)
    async with app.starlette.router.lifespan_context(app.starlette):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            workers = (await client.get("/tasky/v1/workers")).json()
            assert workers[0]["enabled"] is False
            r = await client.post("/tasky/v1/workers/off", json={})
            assert r.status_code == 409 and "disabled" in r.json()["Error"]


def test_bad_definitions_are_refused() -> None:
    with pytest.raises(ValueError, match="max_tasks"):

        @worker("Zero", max_tasks=0)
        def zero(config: BaseModel, task: object) -> None: ...

    with pytest.raises(ValueError, match="name"):

        @worker("has space")
        def spaced(config: BaseModel, task: object) -> None: ...

    with pytest.raises(ValueError, match="pause and resume"):

        @worker("Half", actions={"cancel", "pause"})
        def half(config: BaseModel, task: object) -> None: ...

    class Lazy(Worker):
        name = "Lazy"

    with pytest.raises(ValueError, match="needs a perform"):
        Lazy.check_definition()

    registry = WorkerRegistry()
    registry.register(Off)
    with pytest.raises(ValueError, match="two workers"):
        registry.register(Off)


def test_modes_are_inferred() -> None:
    @worker("Sync")
    def sync_work(config: BaseModel, task: object) -> None: ...

    @worker("Async")
    async def async_work(config: BaseModel, task: object) -> None: ...

    assert sync_work.execution_mode() == "thread"
    assert async_work.execution_mode() == "async"


def test_module_without_workers_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "empty_workers_mod.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError, match="defines no workers"):
        WorkerRegistry().register_module("empty_workers_mod")
