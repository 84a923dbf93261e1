"""A chain's next step starts in the commit of the end of the step before it (SQLite): one
durable commit per sequential step, the same steps, results and references as when the step
starts in a commit of its own, and still one task per step when two runners race."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tasky.server import build_app
from tasky.settings import Settings
from tasky.store import create_store
from tasky.workers.registry import WorkerRegistry
from tests import test_chains_scale
from tests.conftest import _open_client
from tests.test_chains_durable import WORKER_ARGS, _runs, _wait
from tests.test_chains_scale import (
    assert_each_step_ran_once,
    run_whole,
    run_with_two_runners,
    sequential,
)

API = "/tasky/v1"


# The examples and test workers plus Nothing (a step whose only writes are the chain's own).
registry = test_chains_scale.registry


@pytest.fixture
async def sqlite(
    settings: Settings, registry: WorkerRegistry
) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    app = build_app(settings, registry=registry)  # the default store: a SQLite file
    async for client in _open_client(app):
        yield app, client


async def commits(client: httpx.AsyncClient) -> float:
    r = await client.get("/metrics")
    assert r.status_code == 200
    found = re.search(r"^tasky_store_commit_seconds_count (\S+)$", r.text, re.MULTILINE)
    assert found is not None
    return float(found.group(1))


async def test_each_step_starts_in_the_commit_of_the_one_before(
    sqlite: tuple[Any, httpx.AsyncClient],
) -> None:
    """Each step's end and the start of the next are one commit: a chain of n steps costs
    about n commits, where ending a step and starting the next in commits of their own cost
    2n."""
    _, client = sqlite
    n = 120
    before = await commits(client)
    _, done, steps = await run_whole(client, sequential(n), timeout=120)
    used = await commits(client) - before
    assert done["Status"] == "Completed", done["Error"]
    assert_each_step_ran_once(steps, n)
    # n step ends, plus the chain's creation, its first step, its end, and slack for the odd
    # step that goes the usual way; far from 2n.
    assert used <= n + 15, used


async def test_references_to_the_step_before_are_filled_in(
    sqlite: tuple[Any, httpx.AsyncClient],
) -> None:
    """A step started with the end of the one before reads that step's result (as stored)."""
    _, client = sqlite
    body = {
        "steps": [{"name": "s0", "worker": "Echo", "config": {"value": {"v": ["x", 1]}}}]
        + [
            {
                "name": f"s{i}",
                "worker": "Echo",
                "config": {"value": {"v": f"${{steps.s{i - 1}.result.v}}"}},
            }
            for i in range(1, 30)
        ]
        + [{"name": "last", "worker": "Echo", "config": {"value": "${steps.s29.status}"}}]
    }
    _, done, steps = await run_whole(client, body, timeout=120)
    assert done["Status"] == "Completed", done["Error"]
    assert [s["Output"] for s in steps[:30]] == [{"v": ["x", 1]}] * 30
    assert done["Result"] == {"string_output": "Completed"}


async def test_two_runners_start_each_step_once_on_sqlite(
    sqlite: tuple[Any, httpx.AsyncClient],
) -> None:
    """Both runners hear every end before it commits and both start the next step with it:
    the step's one task id lets one of them, so each step has one task."""
    app, client = sqlite
    await run_with_two_runners(app, client, 150)


async def test_the_memory_store_goes_the_usual_way(
    settings: Settings, registry: WorkerRegistry
) -> None:
    """A store without ChainStore.advance: the runner hears no end before it commits."""
    app = build_app(settings, registry=registry, store=create_store("memory:"))
    async for client in _open_client(app):
        _, done, steps = await run_whole(client, sequential(20), timeout=60)
        assert done["Status"] == "Completed", done["Error"]
        assert_each_step_ran_once(steps, 20)


def test_kill_9_while_steps_start_with_the_ends_before_them(
    server_factory: Any, tmp_path: Path
) -> None:
    """Killed (SIGKILL) three times while the steps of a long chain start in the commits of
    the ends before them: each start is kept with its end or lost with it, so after the
    restarts every step has one task, and every task that exists is a step's."""
    marks = tmp_path / "marks.txt"
    n = 300
    body = {
        "parameters": {"marks": str(marks)},
        "steps": [
            {"name": f"s{i}", "worker": "MarkAgain", "config": {"path": "${params.marks}"}}
            for i in range(n)
        ],
    }
    server = server_factory(*WORKER_ARGS)
    r = httpx.post(f"{server.api}/chains", json=body, timeout=10)
    assert r.status_code == 201, r.text
    chain_id = r.json()["ChainId"]
    for round_ in range(1, 4):
        deadline = time.monotonic() + 60
        while sum(_runs(marks).values()) < round_ * n // 5:
            assert time.monotonic() < deadline, "the chain does not advance"
            time.sleep(0.005)
        server.kill()
        server = server_factory(*WORKER_ARGS, data_dir=server.data_dir)
    done = _wait(server.api, chain_id, lambda b: b["Status"] != "Running", timeout=120)
    assert done["Status"] == "Completed", done["Error"]
    ids = [step["TaskId"] for step in done["Steps"]]
    assert len(ids) == n and len(set(ids)) == n
    listed = httpx.get(f"{server.api}/tasks", params={"chain": chain_id, "limit": 1000}).json()
    assert sorted(t["TaskId"] for t in listed["Tasks"]) == sorted(ids)
    runs = _runs(marks)
    assert set(runs) == set(ids)  # every step ran; no task ran that is not its step's
    assert max(runs.values()) <= 2  # again only when a kill came while it ran
