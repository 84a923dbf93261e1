"""User-side drivers: one process submits tasks the way a user's script would, through the shipped
clients, and times the run until the server has completed every task (or, for the ``-ack``
drivers, until every task is acknowledged).

    python bench/drivers.py sync URL --tasks 10000
    python bench/drivers.py sync-ack URL --tasks 10000   (answers only: also runs against the
                                                          bare baseline, which keeps nothing)
    python bench/drivers.py async URL --tasks 10000 --in-flight 32 [--transport httpcore]
    python bench/drivers.py batch URL --tasks 50000 --chunk 1000
    python bench/drivers.py batch-ack URL --tasks 50000 --chunk 1000 --worker Blocker
    python bench/drivers.py aiohttp URL --tasks 10000 --in-flight 32   (a plain aiohttp client)

It prints one JSON object: the driver, the number of tasks, the seconds spent submitting, the
seconds until the last completion (``null`` for the ``-ack`` drivers), and the refused submits.
Run in its own process so that the driver's CPU is not the benchmark harness's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the tasky package importable
    sys.path.insert(0, str(ROOT))

from tasky.client import AsyncClient, Client, TaskyError  # noqa: E402

POLL = 0.005


def _completed(stats: httpx.Client, api: str, worker: str) -> int:
    body: dict[str, Any] = stats.get(f"{api}/workers/{worker}/statistics").json()
    done: int = body["ByStatus"]["Completed"]
    return done


def _wait_for(stats: httpx.Client, api: str, worker: str, target: int, timeout: float) -> float:
    """The monotonic time at which ``target`` tasks of ``worker`` are Completed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _completed(stats, api, worker) >= target:
            return time.monotonic()
        time.sleep(POLL)
    raise RuntimeError(f"{worker}: {target} completed tasks not reached within {timeout:g} s")


def submit_sync(url: str, worker: str, tasks: int) -> int:
    """The shipped blocking client, one call after another; returns the refused calls."""
    refused = 0
    with Client(url) as tasky:
        for _ in range(tasks):
            try:
                tasky.submit(worker, {})
            except TaskyError:
                refused += 1
    return refused


def submit_async(url: str, worker: str, tasks: int, in_flight: int, transport: str) -> int:
    """The shipped asyncio client with ``in_flight`` submits outstanding at any time."""

    async def run() -> int:
        chosen: httpx.AsyncBaseTransport | None = None
        if transport == "httpcore":
            chosen = httpx.AsyncHTTPTransport()
        elif transport == "aiohttp":
            from httpx_aiohttp import AiohttpTransport

            chosen = AiohttpTransport()
        refused = 0
        left = tasks
        async with AsyncClient(url, transport=chosen) as tasky:

            async def one_lane() -> None:
                nonlocal left, refused
                while left > 0:
                    left -= 1
                    try:
                        await tasky.submit(worker, {})
                    except TaskyError:
                        refused += 1

            await asyncio.gather(*(one_lane() for _ in range(in_flight)))
        return refused

    return asyncio.run(run())


def submit_aiohttp(url: str, worker: str, tasks: int, in_flight: int) -> int:
    """A plain aiohttp client (no Tasky code): how fast the server goes for a lean client."""
    import aiohttp

    async def run() -> int:
        refused = 0
        left = tasks
        target = f"{url}/tasky/v1/workers/{worker}"
        headers = {"Content-Type": "application/json"}
        async with aiohttp.ClientSession() as session:

            async def one_lane() -> None:
                nonlocal left, refused
                while left > 0:
                    left -= 1
                    async with session.post(target, data=b"{}", headers=headers) as answer:
                        await answer.read()
                        refused += answer.status >= 300

            await asyncio.gather(*(one_lane() for _ in range(in_flight)))
        return refused

    return asyncio.run(run())


def submit_batches(url: str, worker: str, tasks: int, chunk: int) -> int:
    """The shipped blocking client's ``submit_many``, ``chunk`` configs per request."""
    with Client(url) as tasky:
        ids = tasky.submit_many(worker, [{}] * tasks, chunk_size=chunk)
    return tasks - len(ids)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "driver", choices=("sync", "sync-ack", "async", "aiohttp", "batch", "batch-ack")
    )
    parser.add_argument("url", help="the server, http://HOST:PORT")
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--worker", default="Noop")
    parser.add_argument("--in-flight", type=int, default=32)
    parser.add_argument("--chunk", type=int, default=1000)
    parser.add_argument(
        "--transport",
        choices=("default", "httpcore", "aiohttp"),
        default="default",
        help="async only: the client's default, httpx's own pool, or httpx-aiohttp named",
    )
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    url = args.url.rstrip("/")
    api = url + "/tasky/v1"
    drivers: dict[str, Callable[[], int]] = {
        "sync": lambda: submit_sync(url, args.worker, args.tasks),
        "sync-ack": lambda: submit_sync(url, args.worker, args.tasks),
        "async": lambda: submit_async(url, args.worker, args.tasks, args.in_flight, args.transport),
        "aiohttp": lambda: submit_aiohttp(url, args.worker, args.tasks, args.in_flight),
        "batch": lambda: submit_batches(url, args.worker, args.tasks, args.chunk),
        "batch-ack": lambda: submit_batches(url, args.worker, args.tasks, args.chunk),
    }
    wait_for_completion = not args.driver.endswith("-ack")
    before = 0
    if wait_for_completion:
        # A client of its own, closed before the submits: a connection left idle while they run
        # (5 s or more) meets the server's keep-alive timeout, and a poll sent just as the server
        # closes it fails ("Server disconnected without sending a response").
        with httpx.Client(timeout=30) as stats:
            before = _completed(stats, api, args.worker)
    start = time.monotonic()
    refused = drivers[args.driver]()
    submitted = time.monotonic()
    end = None
    if wait_for_completion:
        target = before + args.tasks - refused
        with httpx.Client(timeout=30) as stats:
            end = _wait_for(stats, api, args.worker, target, args.timeout)
    print(
        json.dumps(
            {
                "driver": args.driver,
                "tasks": args.tasks,
                "refused": refused,
                "submit_seconds": submitted - start,
                "total_seconds": None if end is None else end - start,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
