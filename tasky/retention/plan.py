"""Who is pruned at what age: the server's retention, each worker's override, and ages as text."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from tasky.workers.base import Worker

DAY = 86400.0
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": DAY, "w": 7 * DAY}
_AGE = re.compile(r"(\d+(?:\.\d+)?)([smhdw]?)")


@dataclass(frozen=True, slots=True)
class Pass:
    """Delete the finished tasks of ``worker`` (None: of every worker) that ended before
    ``before``; or, with ``chains``, the finished chains (which take their tasks along)."""

    worker: str | None
    before: float
    chains: bool = False


def parse_age(text: str) -> float:
    """Seconds in ``30d``, ``12h``, ``90m``, ``45s``, ``2w`` (a bare number is days)."""
    found = _AGE.fullmatch(text.strip())
    if found is None:
        raise ValueError(f"an age looks like 30d, 12h, 90m, 45s or 2w, not {text!r}")
    return float(found.group(1)) * _UNITS[found.group(2) or "d"]


def effective_days(worker: Worker, default_days: float) -> float:
    return default_days if worker.retention_days is None else worker.retention_days


def passes(workers: Iterable[Worker], default_days: float, now: float) -> list[Pass]:
    """The background pruner's passes: one per worker that keeps tasks for a limited time.

    Then one pass over every worker (for tasks of workers no longer registered) at the longest
    retention of all, so it never removes what a registered worker keeps longer; skipped when
    any of them keeps tasks forever (0). Chains go with the server's retention.
    """
    days = {w.name: effective_days(w, default_days) for w in workers}
    result = [Pass(name, now - d * DAY) for name, d in sorted(days.items()) if d > 0]
    if default_days > 0 and all(d > 0 for d in days.values()):
        longest = max([default_days, *days.values()])
        result.append(Pass(None, now - longest * DAY))
    if default_days > 0:
        result.append(Pass(None, now - default_days * DAY, chains=True))
    return result
