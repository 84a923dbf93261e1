"""What the engine counts live, per worker, for the metrics export (tasky.prom).

Everything else the metrics show is read from the store at scrape time; these are the few
numbers that only the running engine sees. Each update is a plain int increment (or one
bisect), so submits and finishes pay next to nothing for them.
"""

from __future__ import annotations

from tasky.buckets import Buckets

# Queue wait: from a fraction of a millisecond (a free slot) to an hour behind a long queue.
QUEUE_WAIT_BOUNDS = (
    0.001,
    0.005,
    0.01,
    0.05,
    0.1,
    0.5,
    1.0,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
    3600.0,
)
# How an attempt ended: a finished status, or "Retried" (failed, queued again with backoff).
OUTCOMES = ("Completed", "Failed", "Canceled", "Retried")


class WorkerCounters:
    """Counts since this engine started (Prometheus handles the reset of a restart)."""

    __slots__ = ("outcomes", "queue_wait", "submitted")

    def __init__(self) -> None:
        self.submitted = 0
        self.outcomes: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
        self.queue_wait = Buckets(QUEUE_WAIT_BOUNDS)

    def ended(self, outcome: str) -> None:
        if outcome in self.outcomes:
            self.outcomes[outcome] += 1
