"""Huey with Redis (results off: nothing reads them), enqueued by calling the task, or many at
once with the task's ``map``."""

from __future__ import annotations

import sys

from huey import RedisHuey

from bench.peers import broker_url, mark_done

huey = RedisHuey("bench", url=broker_url(), results=False)


@huey.task()
def noop() -> None:
    mark_done()


def send() -> None:
    noop()


def send_many(count: int) -> None:
    noop.map([()] * count)  # one call with no arguments per item


def consumer_argv() -> list[str]:
    # As its documentation starts it: one worker thread (8 threads made no difference here).
    return [sys.executable, "-m", "huey.bin.huey_consumer", f"{__name__}.huey", "--quiet"]
