"""Celery with Redis as its broker (results ignored: nothing reads them), sent with ``delay()``,
or many at once as a ``group``."""

from __future__ import annotations

import sys

from celery import Celery, group

from bench.peers import broker_url, mark_done

app = Celery("bench", broker=broker_url())
app.conf.task_ignore_result = True
app.conf.worker_hijack_root_logger = False


@app.task
def noop() -> None:
    mark_done()


def send() -> None:
    noop.delay()


def send_many(count: int) -> None:
    group(noop.s() for _ in range(count)).apply_async()


def consumer_argv() -> list[str]:
    # As its documentation starts it: a pool of processes, one per core (8 threads instead made
    # no difference here).
    return [sys.executable, "-m", "celery", "--app", __name__, "worker", "--loglevel", "WARNING"]
