"""The Python task queues users compare Tasky with, run on this machine by the benchmark.

Each module here is one peer's application, written as its documentation writes one: a no-op
task, the peer's own way to enqueue it (``send``) and the command of its own consumer
(``consumer_argv``). The broker is a Redis server the benchmark starts (``BENCH_PEER_BROKER``);
each task, when it has run, adds one to a counter in a second Redis server that keeps nothing on
disk (``BENCH_PEER_COUNTER``), so that the driver sees the last completion the same way for
every peer, and a durable broker is not made to sync the counter too.
"""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis

# Each peer: its app module's name (bench/peers/<name>_app.py) and how the table names it.
PEERS = {"dramatiq": "dramatiq", "huey": "huey", "rq": "RQ", "celery": "Celery"}
DONE = "bench:done"


def figure_name(peer: str, mode: str, batch: bool) -> str:
    """The figure of ``peer`` with the broker in ``mode``: one send after another, or batches."""
    return f"peer_{peer}_{mode}{'_batch' if batch else ''}_tasks_per_s"


def broker_url() -> str:
    return os.environ["BENCH_PEER_BROKER"]


@cache
def _counter() -> redis.Redis:
    import redis  # the bench extra: only the peers' processes need it, not the table

    return redis.Redis.from_url(os.environ["BENCH_PEER_COUNTER"])


def mark_done() -> None:
    """What each peer's no-op task does: count itself as run."""
    _counter().incr(DONE)


def done() -> int:
    value = _counter().get(DONE)
    return int(value) if value is not None else 0


def reset() -> None:
    _counter().delete(DONE)
