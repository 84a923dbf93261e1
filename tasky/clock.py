"""Time sources. Wall time for what people read; a monotonic clock for measured intervals."""

from __future__ import annotations

import time


def now() -> float:
    """Seconds since the epoch (stored, shown)."""
    return time.time()


def monotonic() -> float:
    return time.monotonic()


def go_duration(seconds: float) -> str:
    """Format like Go's time.Duration.String(), as the seed's ``Duration`` field: ``1m0.00026s``."""
    if seconds <= 0:
        return "0s"
    total_ns = round(seconds * 1e9)
    if total_ns < 1000:
        return f"{total_ns}ns"
    if total_ns < 1_000_000:
        return f"{_trim(total_ns / 1000)}µs"
    if total_ns < 1_000_000_000:
        return f"{_trim(total_ns / 1e6)}ms"
    hours, rest = divmod(total_ns, 3600 * 10**9)
    minutes, rest = divmod(rest, 60 * 10**9)
    secs = _trim(rest / 1e9)
    out = ""
    if hours:
        out += f"{hours}h"
    if hours or minutes:
        out += f"{minutes}m"
    return out + f"{secs}s"


def _trim(value: float) -> str:
    text = f"{value:.9f}".rstrip("0").rstrip(".")
    return text or "0"
