"""The statistics' run-time histogram view: buckets' bounds (remembered per bucket) as ever."""

from __future__ import annotations

import itertools
import random

from tasky.api.views import histogram_view
from tasky.store.histogram import BASE, bucket_of


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


def test_a_run_between_an_exact_edge_and_its_shown_form_is_counted_where_the_bounds_say() -> None:
    """1.1 ** 60 ms is 0.30448... s, shown as 0.3045: a run of 0.30449 s belongs below it."""
    edge = BASE**60 / 1000
    shown = formatted(BASE**60)
    assert edge < 0.30449 < shown
    assert bucket_of(0.30449) == 59
    [bucket] = histogram_view({bucket_of(0.30449): 1})
    assert bucket["FromSeconds"] <= 0.30449 < bucket["ToSeconds"]
    # On the other side of a bound shown below its exact value (1.1 ** 61 ms = 0.33493 s,
    # shown 0.3349), a run at the shown bound already belongs to the next bucket.
    assert formatted(BASE**61) < BASE**61 / 1000
    assert bucket_of(formatted(BASE**61)) == 61


def test_every_run_lies_within_the_bounds_its_bucket_shows() -> None:
    rng = random.Random(7)
    runs = [0.0, 1e-9, 1e-5, 0.3, 0.30449, 3600.0]
    runs += [BASE**b / 1000 * (1 + d) for b in range(-40, 140) for d in (-1e-4, -1e-9, 0, 1e-9)]
    runs += [10 ** rng.uniform(-5, 5) for _ in range(20_000)]
    for run in runs:
        [bucket] = histogram_view({bucket_of(run): 1})
        assert bucket["FromSeconds"] <= max(run, 1e-5) < bucket["ToSeconds"], run
