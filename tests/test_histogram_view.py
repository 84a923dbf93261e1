"""The statistics' run-time histogram view: buckets' bounds (remembered per bucket) as ever."""

from __future__ import annotations

import itertools

from tasky.api.views import histogram_view
from tasky.store.histogram import BASE


def formatted(ms: float) -> float:
    return float(f"{ms / 1000.0:.4g}")


def test_every_bucket_shows_its_bounds_in_seconds_to_four_digits() -> None:
    hist = {b: b + 10 for b in range(-5, 120)} | {200: 0}
    view = histogram_view(hist)
    assert view == [
        {"FromSeconds": formatted(BASE**b), "ToSeconds": formatted(BASE ** (b + 1)), "Count": n}
        for b, n in sorted(hist.items())
        if n
    ]
    assert histogram_view(hist) == view  # asked again: the same, from what was remembered
    assert all(a["ToSeconds"] == b["FromSeconds"] for a, b in itertools.pairwise(view))


def test_empty_buckets_are_left_out_and_the_rest_sorted() -> None:
    assert histogram_view({7: 2, 3: 0, 5: 1}) == [
        {"FromSeconds": formatted(BASE**5), "ToSeconds": formatted(BASE**6), "Count": 1},
        {"FromSeconds": formatted(BASE**7), "ToSeconds": formatted(BASE**8), "Count": 2},
    ]
