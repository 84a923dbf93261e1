"""Log-scale run-time histogram, so percentiles stay O(buckets) at any number of tasks.

Bucket ``b`` holds durations in ``[BASE ** b, BASE ** (b + 1))`` milliseconds; with BASE = 1.1 a
percentile read from it is within 10 % of the exact value.
"""

from __future__ import annotations

import math

BASE = 1.1
_LOG_BASE = math.log(BASE)
_MIN_MS = 0.01


def bucket_of(seconds: float) -> int:
    ms = max(seconds * 1000.0, _MIN_MS)
    return math.floor(math.log(ms) / _LOG_BASE)


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
