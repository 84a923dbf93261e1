"""GET /tasky/v1/workers/{name}/throughput: attempts finished per minute, for the charts."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from tasky import clock
from tasky.api.openapi import Doc
from tasky.api.responses import ApiError, JSONResponse
from tasky.engine.engine import Engine

PATH = "/tasky/v1/workers/{name}/throughput"
OUTCOMES = ("Completed", "Failed", "Canceled")
MAX_MINUTES = 24 * 60

DOC = Doc(
    "Attempts that ran and ended, per minute and outcome, over the last minutes",
    errors=(400, 404),
    query=(("minutes", "integer", f"How many minutes back, 1 to {MAX_MINUTES} (default 60)."),),
    tags=("workers",),
)


def routes() -> list[BaseRoute]:
    return [Route(PATH, throughput, methods=["GET"])]


def docs() -> list[tuple[str, str, Doc]]:
    return [("GET", PATH, DOC)]


def _minutes(request: Request) -> int:
    raw = request.query_params.get("minutes") or "60"
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_MINUTES:
        raise ApiError(400, f"query parameter minutes must be an integer from 1 to {MAX_MINUTES}")
    return int(raw)


async def throughput(request: Request) -> JSONResponse:
    engine: Engine = request.app.state.engine
    worker = engine.worker(request.path_params["name"])
    span = _minutes(request)
    now_minute = int(clock.now() // 60)
    first = now_minute - span + 1
    counts = {m: dict.fromkeys(OUTCOMES, 0) for m in range(first, now_minute + 1)}
    for minute, status, n in await engine.finished_per_minute(worker.name, first):
        # A clock that stepped back can leave rows "in the future"; they belong to no bar.
        if minute in counts and status in OUTCOMES:
            counts[minute][status] += n
    # Every minute of the window is listed, zeros included, so a chart needs no gap filling.
    return JSONResponse(
        {
            "Worker": worker.name,
            "IntervalSeconds": 60,
            "Minutes": [{"Time": m * 60, **c} for m, c in counts.items()],
        }
    )
