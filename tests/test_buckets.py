"""tasky.buckets and the re-binning of the store's run-time histogram for Prometheus."""

from __future__ import annotations

import pytest

from tasky.buckets import Buckets
from tasky.prom.collector import cumulative, run_time_buckets
from tasky.store.histogram import bucket_of


def test_a_value_on_a_bound_belongs_to_that_bound() -> None:
    b = Buckets((1.0, 2.0))
    for v in (0.5, 1.0, 1.5, 2.0, 3.0):
        b.observe(v)
    snap = b.snapshot()
    assert snap.counts == (2, 2, 1) and snap.count == 5 and snap.total == 8.0
    assert cumulative(snap) == [("1.0", 2), ("2.0", 4), ("+Inf", 5)]


def test_bounds_must_increase() -> None:
    with pytest.raises(ValueError, match="increasing"):
        Buckets((2.0, 1.0))


def test_run_times_land_in_the_right_prometheus_bucket() -> None:
    hist: dict[int, int] = {}
    for seconds in (0.004, 0.3, 0.3, 7200.0):
        hist[bucket_of(seconds)] = hist.get(bucket_of(seconds), 0) + 1
    le = dict(run_time_buckets(hist))
    assert (le["0.005"], le["0.25"], le["0.5"], le["3600.0"], le["+Inf"]) == (1, 1, 3, 3, 4)
