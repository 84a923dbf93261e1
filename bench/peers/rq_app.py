"""RQ (Redis Queue): a function enqueued with ``Queue.enqueue``, or many at once with
``Queue.enqueue_many`` (one Redis pipeline)."""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path

from redis import Redis
from rq import Queue

from bench.peers import broker_url, mark_done

QUEUE = "bench"


def noop() -> None:
    mark_done()


@cache
def _queue() -> Queue:
    return Queue(QUEUE, connection=Redis.from_url(broker_url()))


def send() -> None:
    _queue().enqueue(noop)


def send_many(count: int) -> None:
    _queue().enqueue_many([Queue.prepare_data(noop) for _ in range(count)])


def consumer_argv() -> list[str]:
    # `rq worker` with its SimpleWorker, which runs the jobs in the worker's own process: the
    # default worker forks a process per job and ran 49 no-ops a second here (SimpleWorker: 178),
    # which would make one run of the benchmark take minutes.
    rq = str(Path(sys.executable).parent / "rq")
    simple = "rq.worker.SimpleWorker"
    return [rq, "worker", "--url", broker_url(), "--worker-class", simple, "--quiet", QUEUE]
