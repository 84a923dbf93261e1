"""GET /tasky/v1/metrics: timings the engine records itself, with a monotonic clock.

Dispatch latency (submit acknowledged -> work started) is measured inside the server because a
client cannot see when a task really starts; the benchmark and operators read it from here.
"""

from __future__ import annotations

from pydantic import BaseModel
from starlette.requests import Request

from tasky.api.openapi import Doc
from tasky.api.query import int_param
from tasky.api.responses import JSONResponse
from tasky.engine import Engine


class LatencySummary(BaseModel):
    Count: int
    P50: float | None
    P90: float | None
    P99: float | None
    Max: float | None


class Metrics(BaseModel):
    DispatchLatencySeconds: LatencySummary
    RunningNow: int
    QueuedNow: int


DOC = Doc(
    "Server-side timings: dispatch latency (submit acknowledged -> work started), in seconds",
    Metrics,
    errors=(400,),
    query=(("last", "integer", "Summarise only the newest this many samples (default: all)."),),
    tags=("server",),
)


def quantile(ordered: list[float], q: float) -> float | None:
    """The nearest-rank quantile of an ascending list (None when it is empty)."""
    if not ordered:
        return None
    rank = max(int(q * len(ordered) + 0.999999) - 1, 0)
    return ordered[min(rank, len(ordered) - 1)]


def summarise(samples: list[float]) -> dict[str, float | int | None]:
    ordered = sorted(samples)
    return {
        "Count": len(ordered),
        "P50": quantile(ordered, 0.50),
        "P90": quantile(ordered, 0.90),
        "P99": quantile(ordered, 0.99),
        "Max": ordered[-1] if ordered else None,
    }


async def metrics(request: Request) -> JSONResponse:
    engine: Engine = request.app.state.engine
    samples = list(engine.dispatch_latencies)
    last = int_param(request, "last", 0, 2**62)
    if last is not None and last < len(samples):
        samples = samples[len(samples) - last :]
    names = [w.name for w in engine.registry]
    return JSONResponse(
        {
            "DispatchLatencySeconds": summarise(samples),
            "RunningNow": sum(engine.running_count(n) for n in names),
            "QueuedNow": sum([await engine.queued_count(n) for n in names]),
        }
    )
