"""The schedule routes under /tasky/v1 and how the scheduler plugs into the app.

``create_app`` adds :func:`schedule_routes` to its routes and calls :func:`install` on its state:
the scheduler starts after the engine and the chain service (startup hooks run in order) and
stops before them (its shutdown hook goes first).
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from tasky.api.body import read_json
from tasky.api.handlers import validation_error
from tasky.api.openapi import Doc
from tasky.api.query import only_documented
from tasky.api.responses import ApiError, JSONResponse
from tasky.chains.model import DefinitionError
from tasky.engine import Engine
from tasky.engine.errors import NotFound
from tasky.schedules import schemas
from tasky.schedules.config import load_schedule_specs
from tasky.schedules.model import ScheduleSpec
from tasky.schedules.records import view
from tasky.schedules.scheduler import Scheduler
from tasky.schedules.service import ScheduleExists, ScheduleReadOnly, ScheduleService
from tasky.schedules.timing import TimingError

log = logging.getLogger("tasky.schedules")

PREFIX = "/tasky/v1"


def _service(request: Request) -> ScheduleService:
    service: ScheduleService | None = getattr(request.app.state, "schedules", None)
    if service is None:
        raise ApiError(503, "the scheduler is not running")
    return service


async def list_schedules(request: Request) -> JSONResponse:
    found = await _service(request).store.list_schedules()
    return JSONResponse({"Schedules": [view(s) for s in found]})


async def create_schedule(request: Request) -> JSONResponse:
    service = _service(request)
    raw = await read_json(request, request.app.state.settings.max_body_bytes)
    try:
        spec = ScheduleSpec.model_validate(raw)
        record = await service.create(spec)
    except ValidationError as exc:
        raise validation_error(exc, "schedule") from None
    except TimingError as exc:
        raise ApiError(
            422, str(exc), Fields=[{"field": exc.field, "message": str(exc), "type": "value_error"}]
        ) from None
    except DefinitionError as exc:
        raise ApiError(422, str(exc), Fields=exc.fields or []) from None
    except NotFound as exc:
        field = "worker" if spec.worker is not None else "chain"
        raise ApiError(
            422, str(exc), Fields=[{"field": field, "message": str(exc), "type": "not_found"}]
        ) from None
    except ScheduleExists as exc:
        raise ApiError(409, str(exc)) from None
    return JSONResponse(
        view(record),
        status_code=201,
        headers={"Location": f"{PREFIX}/schedules/{record.name}"},
    )


async def get_schedule(request: Request) -> JSONResponse:
    return JSONResponse(view(await _service(request).get(request.path_params["name"])))


async def delete_schedule(request: Request) -> JSONResponse:
    name = request.path_params["name"]
    try:
        await _service(request).delete(name)
    except ScheduleReadOnly as exc:
        raise ApiError(409, str(exc)) from None
    return JSONResponse({"Name": name, "Deleted": True})


async def pause_schedule(request: Request) -> JSONResponse:
    return JSONResponse(view(await _service(request).set_paused(request.path_params["name"], True)))


async def resume_schedule(request: Request) -> JSONResponse:
    record = await _service(request).set_paused(request.path_params["name"], False)
    return JSONResponse(view(record))


async def run_schedule(request: Request) -> JSONResponse:
    try:
        record = await _service(request).run_now(request.path_params["name"])
    except ValidationError as exc:  # the worker's config model changed since it was saved
        raise validation_error(exc, "config") from None
    except DefinitionError as exc:
        raise ApiError(422, str(exc), Fields=exc.fields or []) from None
    return JSONResponse(view(record))


def _docs() -> list[tuple[str, str, Any, Doc]]:
    tags = ("schedules",)
    one = schemas.ScheduleView
    return [
        (
            "GET",
            "/schedules",
            list_schedules,
            Doc("List schedules", schemas.ScheduleList, tags=tags),
        ),
        (
            "POST",
            "/schedules",
            create_schedule,
            Doc(
                "Create a schedule (cron or interval; 422 names a bad field)",
                one,
                ok_code=201,
                body=ScheduleSpec,
                errors=(400, 404, 409, 413, 422),
                tags=tags,
            ),
        ),
        (
            "GET",
            "/schedules/{name}",
            get_schedule,
            Doc("A schedule with its next and last run", one, errors=(404,), tags=tags),
        ),
        (
            "DELETE",
            "/schedules/{name}",
            delete_schedule,
            Doc(
                "Delete a schedule (409 if the config file declares it)",
                schemas.ScheduleDeleted,
                errors=(404, 409),
                tags=tags,
            ),
        ),
        (
            "POST",
            "/schedules/{name}/pause",
            pause_schedule,
            Doc("Pause a schedule: no run until resumed", one, errors=(404,), tags=tags),
        ),
        (
            "POST",
            "/schedules/{name}/resume",
            resume_schedule,
            Doc(
                "Resume a schedule from now (paused time is not caught up)",
                one,
                errors=(404,),
                tags=tags,
            ),
        ),
        (
            "POST",
            "/schedules/{name}/run",
            run_schedule,
            Doc(
                "Run a schedule once now, outside its timetable",
                one,
                errors=(404, 409, 422, 429),
                tags=tags,
            ),
        ),
    ]


def schedule_routes() -> list[BaseRoute]:
    return [
        Route(PREFIX + path, only_documented(handler, doc.query), methods=[method])
        for method, path, handler, doc in _docs()
    ]


def install(state: Any) -> None:
    """Document the routes and start/stop the scheduler with the app (``app.state``)."""
    state.extra_docs.extend((method, PREFIX + path, doc) for method, path, _, doc in _docs())
    scheduler: list[Scheduler] = []

    async def start(engine: Engine) -> None:
        service = ScheduleService(engine, lambda: getattr(state, "chains", None))
        await _load_config(service, engine)
        state.schedules = service
        scheduler.append(Scheduler(service))
        scheduler[0].start()

    async def stop(engine: Engine) -> None:
        for running in scheduler:
            await running.stop()
        scheduler.clear()
        state.schedules = None

    state.startup_hooks.append(start)
    # Stopped first, before the chain service it may start chains through.
    state.shutdown_hooks.insert(0, stop)


async def _load_config(service: ScheduleService, engine: Engine) -> None:
    """Save the config file's schedules; forget those a config file declared and no longer does.
    A schedule that cannot run stops the server from starting, naming the file and schedule."""
    specs = load_schedule_specs(list(engine.settings.config_files))
    wanted = set()
    for spec, path in specs:
        try:
            record = await service.check(spec, source=str(path))
        except Exception as exc:  # any reason: the message names the file and the schedule
            raise ValueError(f"config file {path}: schedules.{spec.name}: {exc}") from None
        await service.store.save_schedule(record)
        wanted.add(spec.name)
    for old in await service.store.list_schedules():
        if old.source != "api" and old.name not in wanted:
            await service.store.delete_schedule(old.name)
