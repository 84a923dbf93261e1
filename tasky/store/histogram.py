"""Log-scale run-time histogram, so percentiles stay O(buckets) at any number of tasks.

Bucket ``b`` holds durations in ``[BASE ** b, BASE ** (b + 1))`` milliseconds; with BASE = 1.1 a
percentile read from it is within 10 % of the exact value.
"""

from __future__ import annotations

import functools
import math

BASE = 1.1
_LOG_BASE = math.log(BASE)
_MIN_MS = 0.01


@functools.cache
def edge_seconds(bucket: int) -> float:
    """Where ``bucket`` begins (and ``bucket - 1`` ends), in seconds, to four significant digits:
    the bound the statistics show. Neighbouring buckets share it exactly."""
    return float(f"{BASE**bucket / 1000.0:.4g}")


def bucket_of(seconds: float) -> int:
    """The bucket whose shown bounds hold ``seconds``: edge_seconds(b) <= seconds <
    edge_seconds(b + 1). The exact edge BASE ** b ms and its four-digit form differ by up to
    5e-5 of it; a run between the two (0.30449 s, say, against 0.3045 s shown for 1.1 ** 60 ms)
    would otherwise be counted in a bucket that says it starts after it."""
    seconds = max(seconds, _MIN_MS / 1000.0)
    bucket = math.floor(math.log(seconds * 1000.0) / _LOG_BASE)
    if seconds < edge_seconds(bucket):
        return bucket - 1
    if seconds >= edge_seconds(bucket + 1):
        return bucket + 1
    return bucket


def bucket_mid_seconds(bucket: int) -> float:
    """The geometric middle of a bucket, in seconds."""
    return float(BASE ** (bucket + 0.5) / 1000.0)


def percentile(hist: dict[int, int], fraction: float) -> float | None:
    total = sum(hist.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(fraction * total))
    seen = 0
    for bucket in sorted(hist):
        seen += hist[bucket]
        if seen >= rank:
            return bucket_mid_seconds(bucket)
    return bucket_mid_seconds(max(hist))
