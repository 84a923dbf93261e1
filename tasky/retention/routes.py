"""``POST /tasky/v1/prune`` (admin, see tasky.auth.policy) and the background pruner's wiring."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from tasky import clock
from tasky.api.body import read_json
from tasky.api.handlers import validation_error
from tasky.api.openapi import Doc
from tasky.api.query import only_documented
from tasky.api.responses import JSONResponse
from tasky.auth.audit import note_target
from tasky.engine import Engine
from tasky.retention.plan import Pass
from tasky.retention.pruner import prune, prune_forever
from tasky.retention.schemas import PruneRequest, PruneResult

PREFIX = "/tasky/v1"


async def prune_now(request: Request) -> JSONResponse:
    engine: Engine = request.app.state.engine
    raw = await read_json(request, engine.settings.max_body_bytes)
    try:
        wanted = PruneRequest.model_validate(raw)
    except ValidationError as exc:
        raise validation_error(exc, "prune request") from None
    before = clock.now() - wanted.older_than_seconds
    worker = wanted.worker
    if worker is not None:
        # A registered worker by its own spelling; any other name as given (its tasks may
        # remain from a worker that is gone).
        known = engine.registry.get(worker)
        worker = known.name if known is not None else worker
        note_target(request.scope, f"worker={worker}")
        work = [Pass(worker, before)]
    else:
        work = [Pass(None, before), Pass(None, before, chains=True)]
    done = await prune(engine.store, engine.store.chains, work, dry_run=wanted.dry_run)
    return JSONResponse(
        {"Tasks": done.tasks, "Chains": done.chains, "DryRun": wanted.dry_run, "Before": before}
    )


def _docs() -> list[tuple[str, str, Any, Doc]]:
    return [
        (
            "POST",
            "/prune",
            prune_now,
            Doc(
                "Prune finished tasks and chains older than an age now (or count them)",
                PruneResult,
                body=PruneRequest,
                errors=(400, 413, 422),
                tags=("retention",),
            ),
        )
    ]


def retention_routes() -> list[BaseRoute]:
    return [
        Route(PREFIX + path, only_documented(handler, doc.query), methods=[method])
        for method, path, handler, doc in _docs()
    ]


def install(state: Any) -> None:
    """Document the route and run the background pruner while the app runs (``app.state``)."""
    state.extra_docs.extend((method, PREFIX + path, doc) for method, path, _, doc in _docs())
    running: list[asyncio.Task[None]] = []

    async def start(engine: Engine) -> None:
        settings = engine.settings
        pruner = prune_forever(
            engine.store,
            engine.store.chains,
            list(engine.registry),
            settings.retention_days,
            settings.prune_interval,
        )
        running.append(asyncio.create_task(pruner))

    async def stop(engine: Engine) -> None:
        for task in running:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        running.clear()

    state.startup_hooks.append(start)
    state.shutdown_hooks.append(stop)
