"""Process mode against real processes and signals: cancel, pause, timeout, crashes, output."""

from __future__ import annotations

import asyncio
import time

import httpx
import psutil
import pytest

from tasky.settings import Settings
from tasky.workers.registry import WorkerRegistry
from tests.conftest import registry_with
from tests.helpers import API, action, status, submit, wait_for

CHILD_MODULE = "tasky/engine/isolated_start.py"
# Every task starts a Python process of its own: seconds in all.
pytestmark = pytest.mark.slow


@pytest.fixture
def registry() -> WorkerRegistry:
    return registry_with("tests.workers_for_tests", "tests.process_workers")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.max_log_lines = 500
    return settings


def worker_processes(parent: psutil.Process | None = None) -> list[psutil.Process]:
    """The task processes (leaders) started by ``parent`` (default: this test process)."""
    parent = parent or psutil.Process()
    found = []
    for proc in parent.children(recursive=True):
        try:
            if CHILD_MODULE in " ".join(proc.cmdline()):
                found.append(proc)
        except psutil.NoSuchProcess:
            continue
    return found


async def task_group(
    client: httpx.AsyncClient, task_id: str, children: int
) -> list[psutil.Process]:
    """The leader and its ``children`` of a running Burn task, once they all exist."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        leaders = worker_processes()
        if leaders:
            group = [leaders[0], *leaders[0].children(recursive=True)]
            if len(group) == children + 1:
                return group
        await asyncio.sleep(0.05)
    raise AssertionError(f"task {task_id}: its processes did not all start")


def alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    out = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                out.append(proc)
        except psutil.NoSuchProcess:
            continue
    return out


def cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for proc in procs:
        times = proc.cpu_times()
        total += times.user + times.system
    return total


async def wait_stopped(procs: list[psutil.Process]) -> None:
    deadline = time.monotonic() + 10
    while any(p.status() != psutil.STATUS_STOPPED for p in procs):
        assert time.monotonic() < deadline, [p.status() for p in procs]
        await asyncio.sleep(0.02)


async def test_result_progress_and_logs_come_back_as_json(client: httpx.AsyncClient) -> None:
    task_id = await submit(client, "Primes", {"limit": 1_000_000})
    await wait_for(client, task_id, "Completed")
    body = (await client.get(f"{API}/tasks/{task_id}/result")).json()
    assert body["Output"] == {"limit": 1_000_000, "count": 78498, "largest": 999983}
    lines = (await client.get(f"{API}/tasks/{task_id}/logs")).json()["Lines"]
    assert [ln["Line"] for ln in lines] == ["78498 primes up to 1000000; the largest is 999983"]
    assert worker_processes() == []


async def test_progress_is_visible_while_cpu_bound_work_runs(client: httpx.AsyncClient) -> None:
    task_id = await submit(client, "Primes", {"limit": 10**11})
    deadline = time.monotonic() + 15
    while not (body := await status(client, task_id)).get("Progress"):
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.05)
    assert body["Status"] == "Running" and 0 < body["Progress"] < 1
    detail = (await client.get(f"{API}/tasks/{task_id}")).json()
    assert "primes up to" in str(detail)
    assert (await client.post(f"{API}/tasks/{task_id}/cancel")).json()["Status"] == "Canceled"


async def test_cancel_kills_the_whole_group_no_orphans(client: httpx.AsyncClient) -> None:
    task_id = await submit(client, "Burn", {"children": 2})
    group = await task_group(client, task_id, 2)
    assert len(alive(group)) == 3
    r = await client.post(f"{API}/tasks/{task_id}/cancel")
    assert r.status_code == 200 and r.json()["Status"] == "Canceled"
    # Canceled is reported only once every process of the group is gone.
    assert alive(group) == []
    result = (await client.get(f"{API}/tasks/{task_id}/result")).json()
    assert result["Status"] == "Canceled" and result["Output"] == {}


async def test_sigterm_ignored_then_sigkill_after_grace(client: httpx.AsyncClient) -> None:
    task_id = await submit(client, "Burn", {"children": 1, "ignore_term": True})
    # Burn ignores SIGTERM before it starts its child, and the child inherits that: once both
    # exist, only SIGKILL (after the grace period) can end them.
    group = await task_group(client, task_id, 1)
    r = await client.post(f"{API}/tasks/{task_id}/cancel")
    assert r.json()["Status"] in ("Running", "Canceled")
    await wait_for(client, task_id, "Canceled")
    assert alive(group) == []
    assert group[0].pid not in {p.pid for p in worker_processes()}


async def test_pause_stops_cpu_use_and_resume_restarts_it(client: httpx.AsyncClient) -> None:
    task_id = await submit(client, "Burn", {"children": 1})
    group = await task_group(client, task_id, 1)
    r = await action(client, task_id, "pause")
    assert r.status_code == 200 and r.json()["Status"] == "Paused"
    await wait_stopped(group)
    before = cpu_seconds(group)
    await asyncio.sleep(1.0)
    assert cpu_seconds(group) == before, "a paused task's processes must not use CPU"
    assert (await action(client, task_id, "resume")).json()["Status"] == "Running"
    deadline = time.monotonic() + 10
    while cpu_seconds(group) <= before:
        assert time.monotonic() < deadline, "resumed processes do not run"
        await asyncio.sleep(0.05)
    assert all(p.status() != psutil.STATUS_STOPPED for p in group)
    await client.post(f"{API}/tasks/{task_id}/cancel")
    await wait_for(client, task_id, "Canceled")
    assert alive(group) == []


async def test_cancel_while_paused(client: httpx.AsyncClient) -> None:
    task_id = await submit(client, "Burn", {"children": 1})
    group = await task_group(client, task_id, 1)
    await action(client, task_id, "pause")
    await wait_stopped(group)
    r = await client.post(f"{API}/tasks/{task_id}/cancel")
    assert r.json()["Status"] == "Canceled"
    assert alive(group) == []


async def test_timeout_kills_and_fails(client: httpx.AsyncClient) -> None:
    task_id = await submit(client, "Burn", {"children": 1}, timeout=1)
    group = await task_group(client, task_id, 1)
    await wait_for(client, task_id, "Failed")
    assert alive(group) == []
    result = (await client.get(f"{API}/tasks/{task_id}/result")).json()
    assert result["Error"].startswith("timed out after 1 s"), result


@pytest.mark.parametrize(
    ("config", "error"),
    [
        ({"how": "exit", "code": 3}, "the worker process exited with code 3"),
        ({"how": "segv"}, "the worker process was killed by SIGSEGV (signal 11)"),
        ({"how": "kill"}, "the worker process was killed by SIGKILL (signal 9)"),
        ({"how": "exit0"}, "the worker process exited without a result"),
        ({"how": "raise"}, "ValueError: bad input 42"),
        ({"how": "not_json"}, "the result is not JSON"),
    ],
)
async def test_crashes_fail_the_task_with_the_reason(
    client: httpx.AsyncClient, config: dict[str, object], error: str
) -> None:
    task_id = await submit(client, "Crash", config)
    await wait_for(client, task_id, "Failed")
    result = (await client.get(f"{API}/tasks/{task_id}/result")).json()
    assert result["Error"].startswith(error), result
    lines = [ln["Line"] for ln in (await client.get(f"{API}/tasks/{task_id}/logs")).json()["Lines"]]
    # ctx.log lines and plain prints both reach the log.
    assert lines[:2] == ["about to crash", "printed to stdout"]
    after = await submit(client, "Echo", {"value": "still serving"})
    await wait_for(client, after, "Completed")


async def test_chatty_process_log_stays_bounded(client: httpx.AsyncClient) -> None:
    task_id = await submit(client, "Chatty", {"lines": 20_000})
    await wait_for(client, task_id, "Completed", timeout=60)
    body = (await client.get(f"{API}/tasks/{task_id}/logs", params={"limit": 10_000})).json()
    lines = [ln["Line"] for ln in body["Lines"]]
    assert len(lines) == 500  # settings.max_log_lines
    assert lines[-1] == "line 19999" and lines[0] == "line 19500"
    assert body["Dropped"] == 19_500
    newer = (await client.get(f"{API}/tasks/{task_id}/logs", params={"after": body["Next"]})).json()
    assert newer["Lines"] == []


@pytest.mark.parametrize("via", ["print", "log"])
async def test_flood_is_rate_limited_with_a_marker(
    client: httpx.AsyncClient, settings: Settings, via: str
) -> None:
    settings.max_log_lines = 200_000  # keep everything that gets through, to count it
    total = 150_000
    task_id = await submit(client, "Chatty", {"lines": total, "via": via})
    await wait_for(client, task_id, "Completed", timeout=60)
    lines: list[str] = []
    after = 0
    while True:
        body = (
            await client.get(
                f"{API}/tasks/{task_id}/logs", params={"after": after, "limit": 10_000}
            )
        ).json()
        if not body["Lines"]:
            break
        lines += [ln["Line"] for ln in body["Lines"]]
        after = body["Next"]
    assert body["Dropped"] == 0
    markers = [ln for ln in lines if ln.startswith("[tasky] ")]
    kept = [ln for ln in lines if not ln.startswith("[tasky] ")]
    assert markers, "a flood faster than the rate limit must leave a marker"
    hidden = sum(int(m.split()[1]) for m in markers)
    assert hidden + len(kept) == total
    assert kept[-1] == f"line {total - 1}"  # the end of the output is never lost
    numbers = [int(ln.split()[1]) for ln in kept]
    assert numbers == sorted(numbers)


def test_definitions_that_cannot_run_are_refused() -> None:
    from tasky import Worker

    class Local(Worker):
        name = "Local"
        mode = "process"

        def perform(self, config: object, task: object) -> None: ...

    class Coroutine(Worker):
        name = "Coroutine"
        mode = "process"

        async def perform(self, config: object, task: object) -> None: ...

    class NoCommand(Worker):
        name = "NoCommand"
        mode = "command"

    class Grace(Worker):
        name = "Grace"
        kill_grace = -1

    for cls, message in (
        (Local, "top level of an importable module"),
        (Coroutine, "plain def perform"),
        (NoCommand, "needs a CommandWorker"),
        (Grace, "kill_grace"),
    ):
        with pytest.raises(ValueError, match=message):
            cls.check_definition()
