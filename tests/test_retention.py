"""Retention against a real server: the background pruner, per-worker overrides, tasky prune and
POST /tasky/v1/prune, chains."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from tasky.batches import drain as _drain
from tasky.cli.main import app
from tasky.config_file import ConfigError, load_workers
from tasky.retention import Pass, parse_age, passes
from tasky.retention.pruner import BATCH, Pruned, prune
from tasky.states import Status
from tasky.store import create_store
from tasky.store.chain_records import ChainPruned
from tasky.workers.base import Worker
from tests.conftest import ServerProcess
from tests.helpers import wait_sync
from tests.store_contract import records

WORKERS = ("--workers", "tests.workers_for_tests", "--workers", "tests.retention_workers")
SECOND_IN_DAYS = 1 / 86400


def submit(api: str, worker: str, config: Any = None) -> str:
    answer = httpx.post(f"{api}/workers/{worker}", json=config or {}, timeout=10)
    assert answer.status_code == 201, answer.text
    task_id: str = answer.json()["TaskId"]
    return task_id


def exists(api: str, task_id: str) -> bool:
    code = httpx.get(f"{api}/tasks/{task_id}", timeout=10).status_code
    assert code in (200, 404)
    return code == 200


def finished(api: str, worker: str, config: Any = None, want: str = "Completed") -> str:
    task_id = submit(api, worker, config)
    wait_sync(api, task_id, want)
    return task_id


def statistics(api: str, worker: str) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{api}/workers/{worker}/statistics", timeout=10).json()
    return body


def test_background_pruning_while_submits_continue(server_factory: Any) -> None:
    server: ServerProcess = server_factory(
        *WORKERS, "--retention-days", str(2 * SECOND_IN_DAYS), "--prune-interval", "0.2"
    )
    api = server.api
    first = finished(api, "Echo", {"value": 1})
    kept_forever = finished(api, "Keeper")
    kept_a_day = finished(api, "LongKeep")
    # Submit for a while: tasks finish, age past the retention and go, while submits continue.
    submitted: list[tuple[float, str]] = [(time.monotonic(), first)]
    slowest = 0.0
    end = time.monotonic() + 6
    while time.monotonic() < end:
        started = time.monotonic()
        submitted.append((started, submit(api, "Echo", {"value": len(submitted)})))
        slowest = max(slowest, time.monotonic() - started)
        time.sleep(0.05)
    assert slowest < 2.0
    now = time.monotonic()
    old = [task_id for at, task_id in submitted if now - at > 4]  # past 2 s + a round or two
    young = [task_id for at, task_id in submitted if now - at < 0.5]
    assert len(old) > 10 and young
    assert all(exists(api, t) for t in young)  # first: they must not age while we look
    assert not any(exists(api, t) for t in old)
    assert exists(api, kept_forever) and exists(api, kept_a_day)  # per-worker overrides
    # What was pruned still counts in the statistics.
    deadline = time.monotonic() + 15
    while (stats := statistics(api, "Echo"))["TasksPerformed"] < len(submitted):
        assert time.monotonic() < deadline, stats
        time.sleep(0.05)
    assert stats["TasksPerformed"] == stats["Total"] == len(submitted)
    assert stats["ByStatus"]["Completed"] == len(submitted)
    listed = httpx.get(f"{api}/tasks", params={"worker": "Echo", "limit": 1000}).json()
    assert len(listed["Tasks"]) < len(submitted)


def test_worker_with_shorter_retention_is_pruned_first(server_factory: Any) -> None:
    server: ServerProcess = server_factory(*WORKERS, "--prune-interval", "0.2")
    api = server.api
    brief = finished(api, "Brief")
    echo = finished(api, "Echo", {"value": 1})
    deadline = time.monotonic() + 20
    while exists(api, brief):
        assert time.monotonic() < deadline, "the worker's retention_days was not applied"
        time.sleep(0.1)
    assert exists(api, echo)  # the server's 30 days
    assert statistics(api, "Brief")["TasksPerformed"] == 1


def tasky(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "160"})


def test_cli_prune_dry_run_counts_then_prunes(server_factory: Any) -> None:
    server: ServerProcess = server_factory(*WORKERS)
    api, url = server.api, ("--url", server.url)
    echoes = [finished(api, "Echo", {"value": i}) for i in range(3)]
    failed = finished(api, "Flaky", {}, want="Failed")
    time.sleep(4)  # the young task below stays younger than 3 s while the commands run
    young = finished(api, "Echo", {"value": "young"})
    queued_behind = submit(api, "Hold", {"seconds": 30})  # running: never pruned

    dry = tasky("prune", "--older-than", "3s", "--dry-run", *url)
    assert dry.exit_code == 0, dry.output
    assert "Would prune 4 finished tasks and 0 finished chains." in dry.output
    assert all(exists(api, t) for t in [*echoes, failed, young])

    one_worker = tasky("prune", "--older-than", "3s", "--worker", "flaky", "--json", *url)
    assert one_worker.exit_code == 0, one_worker.output
    body = json.loads(one_worker.output)
    assert (body["Tasks"], body["Chains"], body["DryRun"]) == (1, 0, False)
    assert not exists(api, failed) and all(exists(api, t) for t in echoes)

    pruned = tasky("prune", "--older-than", "3s", *url)
    assert pruned.exit_code == 0, pruned.output
    assert "Pruned 3 finished tasks and 0 finished chains." in pruned.output
    assert not any(exists(api, t) for t in echoes)
    assert exists(api, young) and exists(api, queued_behind)
    assert statistics(api, "Echo")["TasksPerformed"] == 4

    bad = tasky("prune", "--older-than", "soon", *url)
    assert bad.exit_code == 2 and "30d" in bad.output


def start_chain(api: str, steps: list[dict[str, Any]]) -> str:
    answer = httpx.post(f"{api}/chains", json={"steps": steps}, timeout=10)
    assert answer.status_code == 201, answer.text
    chain_id: str = answer.json()["ChainId"]
    return chain_id


def chain(api: str, chain_id: str) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{api}/chains/{chain_id}", timeout=10).json()
    return body


def test_finished_chains_pruned_with_steps_running_chains_untouched(
    server_factory: Any,
) -> None:
    server: ServerProcess = server_factory(*WORKERS)
    api = server.api
    echo = {"worker": "Echo", "config": {"value": 1}}
    done_id = start_chain(api, [{"name": "a", **echo}, {"name": "b", **echo}])
    live_id = start_chain(
        api, [{"name": "a", **echo}, {"name": "b", "worker": "Hold", "config": {"seconds": 30}}]
    )
    deadline = time.monotonic() + 15
    while chain(api, done_id)["Status"] != "Completed" or not all(
        s["Status"] == "Completed" for s in chain(api, live_id)["Steps"][:1]
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    done_tasks = [s["TaskId"] for s in chain(api, done_id)["Steps"]]
    live_tasks = [s["TaskId"] for s in chain(api, live_id)["Steps"]]
    time.sleep(1.1)

    older = {"older_than_seconds": 1}
    counted = httpx.post(f"{api}/prune", json={**older, "dry_run": True}).json()
    assert (counted["Tasks"], counted["Chains"], counted["DryRun"]) == (0, 1, True)
    assert httpx.get(f"{api}/chains/{done_id}").status_code == 200
    pruned = httpx.post(f"{api}/prune", json=older).json()
    assert (pruned["Tasks"], pruned["Chains"]) == (0, 1)
    assert httpx.get(f"{api}/chains/{done_id}").status_code == 404
    assert not any(exists(api, t) for t in done_tasks)
    live = chain(api, live_id)
    assert live["Status"] == "Running" and [s["TaskId"] for s in live["Steps"]] == live_tasks
    assert all(exists(api, t) for t in live_tasks)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"older_than_seconds": 0},
        {"older_than_seconds": -5},
        {"older_than_seconds": "1"},  # strict: no coercion
        {"older_than_seconds": 1, "workers": "Echo"},  # unknown key
    ],
)
def test_prune_route_refuses_bad_requests(server: ServerProcess, body: Any) -> None:
    answer = httpx.post(f"{server.api}/prune", json=body)
    assert answer.status_code == 422, answer.text
    assert "Error" in answer.json()


def test_prune_route_is_in_the_openapi_document_as_admin(server: ServerProcess) -> None:
    document = httpx.get(f"{server.api}/openapi.json").json()
    operation = document["paths"]["/tasky/v1/prune"]["post"]
    assert operation["x-tasky-role"] == "admin"


def test_retention_days_from_toml_and_checked(tmp_path: Path) -> None:
    config = tmp_path / "w.toml"
    config.write_text("[[workers]]\nname = 'Short'\nargv = ['true']\nretention_days = 7\n")
    (short,) = load_workers(config, [tmp_path])
    assert short.retention_days == 7
    config.write_text("[[workers]]\nname = 'Bad'\nargv = ['true']\nretention_days = -1\n")
    with pytest.raises(ConfigError, match="retention_days"):
        load_workers(config, [tmp_path])


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30d", 30 * 86400.0), ("12h", 43200.0), ("90m", 5400.0), ("45s", 45.0), ("2", 172800.0)],
)
def test_parse_age(text: str, seconds: float) -> None:
    assert parse_age(text) == seconds


@pytest.mark.parametrize("text", ["", "d", "-1d", "1y", "1 d 2h"])
def test_parse_age_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="age"):
        parse_age(text)


def _worker(name: str, days: float | None) -> Worker:
    cls: type[Worker] = type(name, (Worker,), {"name": name, "retention_days": days})
    return cls()


def test_passes_follow_worker_overrides() -> None:
    now, day = 1_000_000_000.0, 86400.0
    default, forever, short = _worker("A", None), _worker("B", 0), _worker("C", 1)
    # B keeps forever: no pass may touch every worker at once (it would reach B's tasks).
    assert passes([default, forever, short], 30, now) == [
        Pass("A", now - 30 * day),
        Pass("C", now - day),
        Pass(None, now - 30 * day, chains=True),
    ]
    # Tasks of unregistered workers: at the longest retention of all.
    long = _worker("D", 90)
    assert Pass(None, now - 90 * day) in passes([default, short, long], 30, now)
    # Retention off: only the workers that ask for it, and no chains.
    assert passes([default, short], 0, now) == [Pass("C", now - day)]


async def test_drain_steps_aside_as_long_as_each_write_took() -> None:
    """The writer is held at most half the time: after each full batch the pruner waits at least
    as long as the batch's write took, and it stops at the first short batch."""
    calls: list[tuple[float, float]] = []
    left = [3 * BATCH + 7]

    async def delete(limit: int) -> int:
        started = time.monotonic()
        await asyncio.sleep(0.05)  # a slow write
        calls.append((started, time.monotonic()))
        deleted = min(limit, left[0])
        left[0] -= deleted
        return deleted

    assert await _drain(delete, BATCH) == 3 * BATCH + 7
    assert len(calls) == 4
    for (_, ended), (next_started, _) in itertools.pairwise(calls):
        assert next_started - ended >= 0.045


async def test_the_pruner_takes_a_long_chain_over_writes_of_at_most_batch_rows(
    tmp_path: Path,
) -> None:
    """A long chain's tasks and steps go in writes of BATCH rows (a store with one writer holds
    every submit behind a write), and it still counts as one pruned chain."""
    store = create_store(f"sqlite:///{tmp_path / 'tasky.db'}")
    await store.open()
    try:
        long_chain = records.chain(Status.COMPLETED, finished_at=2000.0)
        made = [await records.finished(store, chain_id=long_chain.id) for _ in range(250)]
        await store.chains.create(long_chain, records.steps(long_chain.id, *(t.id for t in made)))
        short_chain = records.chain(Status.CANCELED, finished_at=2001.0)
        await store.chains.create(short_chain, records.steps(short_chain.id, None))
        work = [Pass(None, 5000.0, chains=True)]
        assert await prune(store, store.chains, work, dry_run=True) == Pruned(0, 2)

        written: list[int] = []
        chains = store.chains
        original = chains.prune_finished

        async def counted(before: float, limit: int) -> ChainPruned:
            pruned = await original(before, limit)
            written.append(pruned.rows)
            return pruned

        chains.prune_finished = counted  # type: ignore[method-assign]
        assert await prune(store, chains, work) == Pruned(0, 2)
        # 250 tasks, 250 steps, the chain row, then the short chain's step and row.
        assert sum(written) == 250 + 250 + 1 + 2
        assert len(written) == 6 and max(written) <= BATCH
        assert await prune(store, chains, work, dry_run=True) == Pruned(0, 0)
        assert (await store.worker_stats(records.WORKER)).by_status["Completed"] == 250
    finally:
        await store.close()
