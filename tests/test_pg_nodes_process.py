"""Two real ``tasky serve`` nodes on one PostgreSQL schema: an action asked of either node
reaches the node that runs the task, either node's event stream shows what the other did, and
nodes whose database connections were cut go on working.

Nodes poll only once an hour here (the longest --poll-interval): what happens within a test
happens because a node was woken through the database (LISTEN/NOTIFY).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg
import pytest

from tests.conftest import ServerFactory, ServerProcess, set_subreaper
from tests.pg import fresh_schema
from tests.test_events import aparse_blocks
from tests.test_process_mode import alive, cpu_seconds, wait_stopped, worker_processes

pytestmark = [pytest.mark.postgres, pytest.mark.server, pytest.mark.slow]

WORKERS = ("--workers", "tests.workers_for_tests", "--workers", "tests.process_workers")


@pytest.fixture
def schema_url() -> Iterator[str]:
    with fresh_schema() as url:
        yield url


def node_url(schema_url: str, name: str) -> str:
    """The schema's URL, its connections named after the node (to find its backends)."""
    return f"{schema_url}&application_name={name}"


@pytest.fixture
def nodes(
    schema_url: str, server_factory: ServerFactory, tmp_path: Path
) -> tuple[ServerProcess, ServerProcess]:
    tag = uuid.uuid4().hex[:8]
    started = []
    for name in ("a", "b"):
        started.append(
            server_factory(
                *WORKERS,
                "--db",
                node_url(schema_url, f"tasky-{name}-{tag}"),
                "--poll-interval",
                "3600",
                # Two nodes on one host: each its own name (the default is the host name).
                "--node",
                f"node-{name}",
                data_dir=tmp_path / name,
            )
        )
    return started[0], started[1]


def app_name(node: ServerProcess) -> str:
    return node.args[node.args.index("--db") + 1].rpartition("application_name=")[2]


def submit(node: ServerProcess, worker: str, config: dict[str, Any]) -> dict[str, Any]:
    r = httpx.post(f"{node.api}/workers/{worker}", json=config, timeout=30)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def status(node: ServerProcess, task_id: str) -> dict[str, Any]:
    r = httpx.get(f"{node.api}/tasks/{task_id}/status", timeout=30)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def wait_status(node: ServerProcess, task_id: str, *wanted: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while (now := status(node, task_id)["Status"]) not in wanted:
        assert time.monotonic() < deadline, f"task {task_id} stayed {now}, wanted {wanted}"
        time.sleep(0.02)


def act(node: ServerProcess, task_id: str, action: str) -> httpx.Response:
    return httpx.post(f"{node.api}/tasks/{task_id}/actions", json={"action": action}, timeout=30)


def task_group(node: ServerProcess, children: int) -> list[psutil.Process]:
    """The processes of the one Burn task the node runs (leader and children), once all exist."""
    assert node.proc is not None
    server = psutil.Process(node.proc.pid)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        leaders = worker_processes(server)
        if leaders:
            group = [leaders[0], *leaders[0].children(recursive=True)]
            if len(group) == children + 1:
                return group
        time.sleep(0.05)
    raise AssertionError("the task's processes did not all start")


def test_cancel_on_one_node_stops_the_process_on_the_node_that_runs_it(
    nodes: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = nodes
    task_id = submit(b, "Burn", {"children": 1})["TaskId"]
    wait_status(b, task_id, "Running")
    group = task_group(b, 1)
    assert a.proc is not None and worker_processes(psutil.Process(a.proc.pid)) == []
    r = act(a, task_id, "cancel")
    assert r.status_code in (200, 202), r.text
    # As on one node: 200 once the work stopped, 202 while it is stopping.
    assert (r.status_code, r.json()["Status"]) in ((200, "Canceled"), (202, "Running"))
    wait_status(a, task_id, "Canceled")
    assert alive(group) == []
    r = httpx.post(f"{a.api}/tasks/{task_id}/cancel", timeout=30)
    assert r.status_code == 409  # ended: as on one node


def test_pause_and_resume_on_one_node_reach_the_node_that_runs_the_task(
    nodes: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = nodes
    task_id = submit(b, "Burn", {"children": 1})["TaskId"]
    wait_status(b, task_id, "Running")
    group = task_group(b, 1)
    r = act(a, task_id, "pause")
    assert (r.status_code, r.json()["Status"]) in ((200, "Paused"), (202, "Running"))
    wait_status(a, task_id, "Paused")
    asyncio.run(wait_stopped(group))
    before = cpu_seconds(group)
    time.sleep(1.0)
    assert cpu_seconds(group) == before, "a paused task's processes must not use CPU"
    r = act(a, task_id, "resume")
    assert (r.status_code, r.json()["Status"]) in ((200, "Running"), (202, "Paused"))
    wait_status(a, task_id, "Running")
    deadline = time.monotonic() + 15
    while cpu_seconds(group) <= before:
        assert time.monotonic() < deadline, "resumed processes do not run"
        time.sleep(0.05)
    act(a, task_id, "cancel")
    wait_status(a, task_id, "Canceled")
    assert alive(group) == []


async def _collect(node: ServerProcess, into: list[dict[str, Any]], opened: asyncio.Event) -> None:
    """Task events of Hold on the node's stream, until one shows a task Completed."""
    async with (
        httpx.AsyncClient(timeout=None) as client,
        client.stream("GET", f"{node.api}/events", params={"worker": "Hold"}) as r,
    ):
        assert r.status_code == 200
        opened.set()
        async for block in aparse_blocks(r):
            if not block.data:
                continue
            event = json.loads("\n".join(block.data))
            if event["type"] in ("task.created", "task.status"):
                into.append(event)
                if event["status"] == "Completed":
                    return


async def _events_across_nodes(a: ServerProcess, b: ServerProcess) -> None:
    # Hold runs one task at a time, over all nodes: the first holds the slot, on b.
    holder = submit(b, "Hold", {"seconds": 600})["TaskId"]
    await asyncio.to_thread(wait_status, b, holder, "Running")
    events: list[dict[str, Any]] = []
    opened = asyncio.Event()
    reader = asyncio.ensure_future(_collect(a, events, opened))
    await asyncio.wait_for(opened.wait(), 30)
    waiting = submit(a, "Hold", {"seconds": 0})["TaskId"]
    assert status(a, waiting)["Status"] == "Queued"
    assert a.proc is not None
    os.kill(a.proc.pid, signal.SIGSTOP)  # a cannot claim it: b runs it
    try:
        r = await asyncio.to_thread(httpx.post, f"{b.api}/tasks/{holder}/cancel", timeout=30)
        assert r.status_code in (200, 202)
        await asyncio.to_thread(wait_status, b, waiting, "Completed")
    finally:
        os.kill(a.proc.pid, signal.SIGCONT)
    await asyncio.wait_for(reader, 60)
    mine = [e for e in events if e["task"] == waiting]
    assert [(e["type"], e["status"]) for e in mine] == [
        ("task.created", "Queued"),
        ("task.status", "Running"),
        ("task.status", "Completed"),
    ]
    # Published from b's log entries: they name the node that ran the task, b by its name.
    assert [e.get("node") for e in mine[1:]] == ["node-b", "node-b"]
    # The holder's end, made on b, shows on a too.
    assert [e["status"] for e in events if e["task"] == holder] == ["Canceled"]


def test_a_nodes_event_stream_shows_what_another_node_did(
    nodes: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = nodes
    asyncio.run(_events_across_nodes(a, b))


def _backends(url: str, name: str) -> list[tuple[int, str]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(
            "SELECT pid, query FROM pg_stat_activity WHERE application_name = %s", (name,)
        ).fetchall()


def test_nodes_go_on_after_their_database_connections_are_terminated(
    nodes: tuple[ServerProcess, ServerProcess], schema_url: str
) -> None:
    a, b = nodes
    for node in nodes:
        name = app_name(node)
        before = _backends(schema_url, name)
        assert any(q.startswith("LISTEN") for _, q in before), before
        with psycopg.connect(schema_url, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity "
                "WHERE application_name = %s",
                (name,),
            )
    # Each node listens again, on a new connection, without a restart.
    for node in nodes:
        deadline = time.monotonic() + 30
        while not any(q.startswith("LISTEN") for _, q in _backends(schema_url, app_name(node))):
            assert time.monotonic() < deadline, "the node did not LISTEN again"
            time.sleep(0.05)
    # The slot is held on a; what is queued on b runs once a's task ends (b is woken).
    holder = submit(a, "Hold", {"seconds": 600})["TaskId"]
    wait_status(a, holder, "Running")
    queued = [submit(node, "Hold", {"seconds": 0})["TaskId"] for node in (b, a, b)]
    assert all(status(a, t)["Status"] == "Queued" for t in queued)
    assert httpx.post(f"{b.api}/tasks/{holder}/cancel", timeout=30).status_code in (200, 202)
    for task_id in queued:
        wait_status(b, task_id, "Completed")
    for node in nodes:
        assert node.proc is not None and node.proc.poll() is None


def _restart_postgresql() -> None:
    """Restart the local PostgreSQL server (fast mode: every session is cut). The new postmaster
    detaches from its starter: it must not be adopted by the test process (see set_subreaper)."""
    [version] = os.listdir("/etc/postgresql")
    argv = ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart", "-m", "fast"]
    set_subreaper(False)
    try:
        subprocess.run(argv, check=True, capture_output=True, timeout=120)
    finally:
        set_subreaper(True)
    deadline = time.monotonic() + 60
    while subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", "5432"]).returncode != 0:
        assert time.monotonic() < deadline, "PostgreSQL did not come back"
        time.sleep(0.2)


@pytest.mark.skipif(
    shutil.which("pg_ctlcluster") is None
    or not os.path.isdir("/etc/postgresql")
    or os.geteuid() != 0,
    reason="restarting PostgreSQL needs the local Debian cluster and root (as on CI)",
)
def test_nodes_go_on_after_postgresql_restarts(
    nodes: tuple[ServerProcess, ServerProcess], schema_url: str
) -> None:
    a, b = nodes
    before = submit(a, "Hold", {"seconds": 0})["TaskId"]
    wait_status(b, before, "Completed")
    _restart_postgresql()
    # Each node listens again on a new connection, and its pool serves again, without a restart.
    for node in nodes:
        deadline = time.monotonic() + 60
        while not any(q.startswith("LISTEN") for _, q in _backends(schema_url, app_name(node))):
            assert time.monotonic() < deadline, "the node did not LISTEN again"
            time.sleep(0.1)
    holder = submit(a, "Hold", {"seconds": 600})["TaskId"]
    wait_status(a, holder, "Running")
    queued = [submit(node, "Hold", {"seconds": 0})["TaskId"] for node in (b, a, b)]
    assert httpx.post(f"{b.api}/tasks/{holder}/cancel", timeout=30).status_code in (200, 202)
    for task_id in queued:
        wait_status(b, task_id, "Completed")
    assert status(a, before)["Status"] == "Completed"  # nothing acknowledged before was lost
    for node in nodes:
        assert node.proc is not None and node.proc.poll() is None
