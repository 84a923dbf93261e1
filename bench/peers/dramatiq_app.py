"""Dramatiq with its Redis broker: an actor that does nothing (no retries), sent with ``send()``,
or many at once as a ``group``."""

from __future__ import annotations

import sys

import dramatiq
from dramatiq import group
from dramatiq.brokers.redis import RedisBroker

from bench.peers import broker_url, mark_done

dramatiq.set_broker(RedisBroker(url=broker_url()))


@dramatiq.actor(max_retries=0)
def noop() -> None:
    mark_done()


def send() -> None:
    noop.send()


def send_many(count: int) -> None:
    group(noop.message() for _ in range(count)).run()


def consumer_argv() -> list[str]:
    # As its documentation starts it: a process per core, 8 threads each.
    return [sys.executable, "-m", "dramatiq", __name__]
