"""Summaries of repeated measurements: median with min and max."""

from __future__ import annotations

import statistics
from typing import Any


def figure(values: list[float], unit: str, **extra: Any) -> dict[str, Any]:
    clean = [v for v in values if v == v]  # drop NaN (a run that produced nothing)
    return {
        "median": statistics.median(clean) if clean else None,
        "min": min(clean) if clean else None,
        "max": max(clean) if clean else None,
        "runs": values,
        "unit": unit,
        **extra,
    }


def ratio(numerators: list[float], denominators: list[float]) -> dict[str, Any]:
    """Median ratio of paired runs (each pair measured back to back), with its spread."""
    pairs = [n / d for n, d in zip(numerators, denominators, strict=True) if d]
    return figure(pairs, "x")
