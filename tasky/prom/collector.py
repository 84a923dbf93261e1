"""The metric families of one snapshot, named after Prometheus conventions.

Counters end in ``_total``, durations are ``_seconds``, every per-worker series carries a
``worker`` label. The collector formats what :mod:`tasky.prom.snapshot` read; it does no I/O.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from tasky.buckets import BucketSnapshot
from tasky.prom.snapshot import Snapshot
from tasky.states import Status
from tasky.store.histogram import bucket_mid_seconds

# Run-time bounds in seconds. The store keeps run times in fine log-scale buckets (10 % wide,
# tasky.store.histogram); each is counted at its geometric middle, so within 5 %.
RUN_TIME_BOUNDS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
    3600.0,
)
STATUSES = tuple(s.value for s in Status)

Buckets = list[tuple[str, float]]


def cumulative(snapshot: BucketSnapshot) -> Buckets:
    """Prometheus ``le`` buckets (cumulative, +Inf last) of a fixed-bound snapshot."""
    out: Buckets = []
    seen = 0
    for bound, n in zip(snapshot.bounds, snapshot.counts, strict=False):
        seen += n
        out.append((repr(float(bound)), seen))  # as the client library writes bounds
    out.append(("+Inf", snapshot.count))
    return out


def run_time_buckets(hist: dict[int, int]) -> Buckets:
    """The store's log-scale run-time histogram re-binned onto RUN_TIME_BOUNDS."""
    counts = [0] * (len(RUN_TIME_BOUNDS) + 1)
    for bucket, n in hist.items():
        counts[bisect_left(RUN_TIME_BOUNDS, bucket_mid_seconds(bucket))] += n
    return cumulative(BucketSnapshot(RUN_TIME_BOUNDS, tuple(counts), 0.0))


class TaskyCollector(Collector):
    """Formats the snapshot the scrape handler hands it just before rendering."""

    def __init__(self) -> None:
        self.snapshot: Snapshot | None = None

    def collect(self) -> Iterable[Metric]:
        if self.snapshot is not None:
            yield from families(self.snapshot)


def families(s: Snapshot) -> Iterator[Metric]:
    yield from _task_families(s)
    yield from _timing_families(s)
    commit = HistogramMetricFamily(
        "tasky_store_commit_seconds",
        "Time of one store commit (a transaction of grouped writes, fsync included)",
    )
    commit.add_metric([], cumulative(s.commits.seconds), s.commits.seconds.total)
    yield commit
    group = HistogramMetricFamily(
        "tasky_store_commit_group_size", "Writes carried by one store commit (group commit)"
    )
    group.add_metric([], cumulative(s.commits.group_size), s.commits.group_size.total)
    yield group
    yield GaugeMetricFamily(
        "tasky_event_stream_clients", "Open event streams (GET /tasky/v1/events)", s.stream_clients
    )


def _task_families(s: Snapshot) -> Iterator[Metric]:
    tasks = GaugeMetricFamily(
        "tasky_tasks", "Tasks in the store by worker and status", labels=["worker", "status"]
    )
    depth = GaugeMetricFamily(
        "tasky_queue_depth", "Queued tasks of the worker (in the store)", labels=["worker"]
    )
    oldest = GaugeMetricFamily(
        "tasky_queue_oldest_age_seconds",
        "How long the worker's first submitted Queued task has waited (0: none waits)",
        labels=["worker"],
    )
    running = GaugeMetricFamily(
        "tasky_running_tasks", "Tasks this server runs now, by worker", labels=["worker"]
    )
    limit = GaugeMetricFamily(
        "tasky_max_tasks", "Tasks the worker may run at once (max_tasks)", labels=["worker"]
    )
    submitted = CounterMetricFamily(
        "tasky_tasks_submitted",
        "Tasks submitted since the server started",
        labels=["worker"],
    )
    ended = CounterMetricFamily(
        "tasky_tasks_finished",
        "Attempts ended since the server started, by outcome (Retried: failed and re-queued)",
        labels=["worker", "outcome"],
    )
    for w in s.workers:
        for status in STATUSES:
            tasks.add_metric([w.name, status], w.stats.by_status.get(status, 0))
        depth.add_metric([w.name], w.stats.by_status.get(Status.QUEUED.value, 0))
        oldest.add_metric([w.name], w.oldest_queued_age)
        running.add_metric([w.name], w.running)
        limit.add_metric([w.name], w.max_tasks)
        submitted.add_metric([w.name], w.submitted)
        for outcome, n in w.outcomes.items():
            ended.add_metric([w.name, outcome], n)
    yield from (tasks, depth, oldest, running, limit, submitted, ended)


def _timing_families(s: Snapshot) -> Iterator[Metric]:
    run_time = HistogramMetricFamily(
        "tasky_task_run_seconds",
        "Run time of attempts that ran and ended (from the store: survives restarts)",
        labels=["worker"],
    )
    wait = HistogramMetricFamily(
        "tasky_task_queue_wait_seconds",
        "Time from queued to started, observed as tasks start (since the server started)",
        labels=["worker"],
    )
    for w in s.workers:
        run_time.add_metric([w.name], run_time_buckets(w.stats.run_time_hist), w.stats.run_time_sum)
        wait.add_metric([w.name], cumulative(w.queue_wait), w.queue_wait.total)
    yield from (run_time, wait)
