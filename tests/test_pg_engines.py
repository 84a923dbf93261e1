"""Two engines (nodes) in one process on one PostgreSQL schema, one or both deaf to wake-ups:
polling alone still gets every hint's work done within ``poll_interval`` (a node misses
notifications while its LISTEN connection is down, or when a NOTIFY is lost)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from tasky.engine import Engine
from tasky.settings import Settings
from tasky.states import Status
from tasky.store.postgres import PostgresStore
from tasky.store.records import Wakeup
from tests.conftest import registry_with
from tests.pg import fresh_schema

pytestmark = pytest.mark.postgres

# Starts two nodes: whether a hears wake-ups, whether b does.
Nodes = Callable[[bool, bool], Awaitable[tuple[Engine, Engine]]]


@pytest.fixture
async def nodes(tmp_path: Path) -> AsyncIterator[Nodes]:
    engines: list[Engine] = []
    with fresh_schema() as url:

        async def start(a_hears: bool, b_hears: bool) -> tuple[Engine, Engine]:
            for name, hears in (("node-a", a_hears), ("node-b", b_hears)):
                store = PostgresStore(url)
                await store.open()
                if not hears:
                    store.watch = _deaf  # type: ignore[method-assign]
                # Two nodes in one process: each its own name (the default is the host name).
                settings = Settings(
                    data_dir=tmp_path / name, node=name, node_id=name, poll_interval=0.2
                )
                engine = Engine(store, registry_with("tests.workers_for_tests"), settings)
                await engine.start()
                engines.append(engine)
            return engines[0], engines[1]

        yield start
        for engine in reversed(engines):
            await engine.stop()
            await engine.store.close()


def _deaf(wake: Callable[[Wakeup], None]) -> None:
    """A store that never hears from the others (its notifications are all lost)."""


async def _until(engine: Engine, task_id: str, *wanted: Status) -> None:
    async def reached() -> None:
        while (await engine.get(task_id)).status not in wanted:
            await asyncio.sleep(0.02)

    await asyncio.wait_for(reached(), 30)


async def test_a_deaf_node_takes_an_action_asked_of_it_on_its_poll(nodes: Nodes) -> None:
    a, b = await nodes(True, False)
    held = await b.submit("Hold", {"seconds": 600})
    await _until(b, held.id, Status.RUNNING)
    paused = await a.pause(held.id)  # asked of b, which finds the request on its poll
    assert paused.status in (Status.PAUSED, Status.RUNNING)
    await _until(a, held.id, Status.PAUSED)
    assert (await b.get(held.id)).owner == "node-b"
    await a.resume(held.id)
    await _until(a, held.id, Status.RUNNING)
    await a.cancel(held.id)
    await _until(a, held.id, Status.CANCELED)


async def test_a_deaf_nodes_events_show_the_other_nodes_changes(nodes: Nodes) -> None:
    a, b = await nodes(True, False)
    seen = b.events.subscribe()
    done = await a.submit("Hold", {"seconds": 0})
    statuses: list[tuple[str, str]] = []
    while ("task.status", "Completed") not in statuses:
        item = await asyncio.wait_for(seen.get(), 30)
        assert item is not None
        event = item[1]
        if event["task"] == done.id:
            statuses.append((event["type"], event["status"]))
    assert statuses[0][0] == "task.created"
    assert [s for _, s in statuses][-2:] == ["Running", "Completed"]


async def test_deaf_nodes_still_claim_what_another_queued_once_a_slot_frees(
    nodes: Nodes,
) -> None:
    a, b = await nodes(False, False)
    holder = await b.submit("Hold", {"seconds": 600})  # Hold: one at a time, over all nodes
    await _until(b, holder.id, Status.RUNNING)
    waiting = await a.submit("Hold", {"seconds": 0})
    assert waiting.status is Status.QUEUED
    await b.cancel(holder.id)
    await _until(a, waiting.id, Status.COMPLETED)
