"""GET /tasky/v1/workers/{name}/throughput: attempts finished per minute, for the charts."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from tasky import clock
from tasky.api.openapi import Doc
from tasky.api.query import int_param, only_documented
from tasky.api.responses import JSONResponse
from tasky.engine import Engine

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
    return [Route(PATH, only_documented(throughput, DOC.query), methods=["GET"])]


def docs() -> list[tuple[str, str, Doc]]:
    return [("GET", PATH, DOC)]


def _minutes(request: Request) -> int:
    minutes = int_param(request, "minutes", 1, MAX_MINUTES, 60)
    assert minutes is not None  # a default is given
    return minutes


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
