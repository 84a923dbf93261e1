"""Fixed-bound histogram counts, cheap enough to update on a hot path.

An observation is one bisect and two additions on plain Python numbers: no locks, no labels, no
allocation. Readers take a :class:`BucketSnapshot` at scrape time. Updates from one thread and
reads from another may see a sum one observation ahead of the counts, which a scrape tolerates.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BucketSnapshot:
    """Counts per bucket (not cumulative): ``counts[i]`` holds values ``<= bounds[i]`` and above
    the previous bound; the last entry holds values above every bound."""

    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    total: float

    @property
    def count(self) -> int:
        return sum(self.counts)


class Buckets:
    __slots__ = ("_counts", "_total", "bounds")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        if list(bounds) != sorted(set(bounds)):
            raise ValueError("bounds must be strictly increasing")
        self.bounds = bounds
        self._counts = [0] * (len(bounds) + 1)
        self._total = 0.0

    def observe(self, value: float) -> None:
        # bisect_left: a value equal to a bound belongs to that bound's bucket (Prometheus "le").
        self._counts[bisect_left(self.bounds, value)] += 1
        self._total += value

    def snapshot(self) -> BucketSnapshot:
        return BucketSnapshot(self.bounds, tuple(self._counts), self._total)
