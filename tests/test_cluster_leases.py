"""Many ``tasky serve`` processes on one PostgreSQL database: work spreads over them, a worker's
limit holds over the whole cluster, the queue stays FIFO across nodes, and when a node dies,
freezes or stops, the others take its tasks (re-run or failed) without losing or doubling any.

Each node has its own name, data directory and port; a short lease and sweep interval make a
dead node's tasks move within seconds. The workers (tests/cluster_workers.py) note every start
and end in a file with their node's pid, which is how a test tells who ran what and when.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ServerFactory, ServerProcess
from tests.helpers import wait_sync
from tests.pg import emptied_shared_schema
from tests.test_core_crash import _hammer

pytestmark = [pytest.mark.postgres, pytest.mark.server, pytest.mark.slow]

Node = Callable[..., ServerProcess]


@pytest.fixture
def pg_url() -> str:
    return emptied_shared_schema()


@pytest.fixture
def node(server_factory: ServerFactory, pg_url: str, tmp_path: Path) -> Node:
    """Start a node named ``name`` on the test's database (stopped with the test)."""

    def start(name: str, *extra: str, lease: str = "2") -> ServerProcess:
        return server_factory(
            "--db",
            pg_url,
            "--workers",
            "tests.workers_for_tests",
            "--workers",
            "tests.cluster_workers",
            "--node",
            name,
            "--lease",
            lease,
            "--sweep-interval",
            "0.3",
            "--poll-interval",
            "0.2",
            *extra,
            data_dir=tmp_path / name,
        )

    return start


@dataclass(frozen=True)
class Note:
    what: str  # "start" or "end"
    task: str
    attempt: int
    pid: int
    at: float


def notes(path: Path) -> list[Note]:
    if not path.exists():
        return []
    found = []
    for line in path.read_text().splitlines():
        what, task, attempt, pid, at = line.split()
        found.append(Note(what, task, int(attempt), int(pid), float(at)))
    return found


def pid_of(server: ServerProcess) -> int:
    assert server.proc is not None
    return server.proc.pid


def submit(server: ServerProcess, worker: str, config: dict[str, Any]) -> str:
    r = httpx.post(f"{server.api}/workers/{worker}", json=config, timeout=10)
    assert r.status_code == 201, r.text
    task_id: str = r.json()["TaskId"]
    return task_id


def detail(server: ServerProcess, task_id: str) -> dict[str, Any]:
    r = httpx.get(f"{server.api}/tasks/{task_id}", timeout=10)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def most_at_once(found: list[Note]) -> int:
    """The most runs in progress at one instant (a run's notes lie inside its slot's hold)."""
    events = sorted((n.at, 1 if n.what == "start" else -1) for n in found)
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


def until(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:g} s for {what}")
        time.sleep(0.05)


def test_tasks_spread_over_three_nodes_and_the_limit_holds_cluster_wide(
    node: Node, tmp_path: Path
) -> None:
    nodes = [node(f"n{i}") for i in range(3)]
    path = tmp_path / "runs.txt"
    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        # Every node answers for the whole cluster (one database): each sample must hold.
        with httpx.Client(timeout=10) as client:
            while not stop.is_set():
                for n in nodes:
                    r = client.get(
                        f"{n.api}/tasks", params={"status": "Running", "worker": "Stint"}
                    )
                    samples.append(len(r.json()["Tasks"]))

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        ids = [submit(nodes[i % 3], "Stint", {"path": str(path), "first": 0.3}) for i in range(18)]
        for task_id in ids:
            wait_sync(nodes[0].api, task_id, "Completed", timeout=30)
    finally:
        stop.set()
        sampler.join(10)
    assert samples and max(samples) <= 3, max(samples)
    found = notes(path)
    assert sorted(n.task for n in found if n.what == "start") == sorted(ids)  # each ran once
    assert sorted(n.task for n in found if n.what == "end") == sorted(ids)
    assert most_at_once(found) <= 3
    assert {n.pid for n in found} == {pid_of(n) for n in nodes}  # every node ran some


def test_fifo_per_worker_holds_across_nodes(node: Node, tmp_path: Path) -> None:
    nodes = [node("n0"), node("n1")]
    path = tmp_path / "runs.txt"
    # A one-slot worker: while the first task holds the slot, the others queue on both nodes.
    ids = [submit(nodes[0], "Single", {"path": str(path), "first": 1.0})]
    ids += [submit(nodes[i % 2], "Single", {"path": str(path)}) for i in range(1, 11)]
    for task_id in ids:
        wait_sync(nodes[1].api, task_id, "Completed", timeout=30)
    starts = sorted((n for n in notes(path) if n.what == "start"), key=lambda n: n.at)
    # Queued through both nodes, started in submit order (whichever node claimed each).
    assert [n.task for n in starts] == ids


def test_a_killed_nodes_tasks_are_rerun_or_failed_by_the_others(node: Node, tmp_path: Path) -> None:
    path = tmp_path / "runs.txt"
    a = node("a")
    # Running on a (StintAgain's limit is 3), and three waiting in the queue it accepted.
    safe = [submit(a, "StintAgain", {"path": str(path), "first": 60}) for _ in range(3)]
    unsafe = submit(a, "Stint", {"path": str(path), "first": 60})
    for task_id in [*safe, unsafe]:
        wait_sync(a.api, task_id, "Running")
    waiting = [submit(a, "StintAgain", {"path": str(path)}) for _ in range(3)]
    b = node("b")
    a_owner = f"a:{pid_of(a)}"
    a.kill()

    for task_id in safe:
        wait_sync(b.api, task_id, "Completed", timeout=30)
        body = detail(b, task_id)
        assert body["Attempt"] == 2
        attempts = body["Attempts"]
        assert [x["Status"] for x in attempts] == ["Failed", "Completed"]
        assert f"node {a_owner} stopped renewing its lease" in attempts[0]["Error"]
    failed = wait_sync(b.api, unsafe, "Failed", timeout=30)
    assert a_owner in failed["Error"] and "not safe to re-run" in failed["Error"]
    # The acknowledged tasks that were waiting (a's slots were full): run by b.
    for task_id in waiting:
        wait_sync(b.api, task_id, "Completed", timeout=30)
    found = notes(path)
    ends = [n.task for n in found if n.what == "end"]
    assert sorted(ends) == sorted([*safe, *waiting])  # none ended twice; the unsafe one never
    assert {n.pid for n in found if n.what == "end"} == {pid_of(b)}


def test_a_frozen_node_loses_its_task_and_its_late_finish_is_refused(
    node: Node, tmp_path: Path
) -> None:
    path = tmp_path / "runs.txt"
    a, b = node("a"), node("b")
    # A submit to a with its slot free starts the task on a at once.
    task_id = submit(a, "StintAgain", {"path": str(path), "first": 4})
    until(lambda: bool(notes(path)), "the task to start")
    os.kill(pid_of(a), signal.SIGSTOP)
    try:
        [started] = notes(path)
        assert (started.task, started.pid) == (task_id, pid_of(a))
        # a heartbeats no more: past its lease, b takes the task and runs attempt 2 itself.
        wait_sync(b.api, task_id, "Completed", timeout=30)
    finally:
        os.kill(pid_of(a), signal.SIGCONT)
    # a wakes up, its attempt 1 runs to its end, and the store refuses that end.
    until(
        lambda: any(n.what == "end" and n.attempt == 1 for n in notes(path)),
        "the frozen attempt to end",
    )
    until(lambda: "no longer holds it" in a.read_log(), "a to report its refused end")
    body = detail(b, task_id)
    assert (body["Status"], body["Attempt"]) == ("Completed", 2)
    assert [x["Status"] for x in body["Attempts"]] == ["Failed", "Completed"]
    assert f"node a:{pid_of(a)}" in body["Attempts"][0]["Error"]
    result = httpx.get(f"{b.api}/tasks/{task_id}/result", timeout=10).json()
    assert result["Output"] == {"pid": pid_of(b)}  # b's end, not a's late one
    # One node per attempt: attempt 1 was a's, attempt 2 b's.
    runs = {(n.attempt, n.pid) for n in notes(path) if n.what == "start"}
    assert runs == {(1, pid_of(a)), (2, pid_of(b))}


def test_a_graceful_stop_hands_its_tasks_to_another_node_at_once(
    node: Node, tmp_path: Path
) -> None:
    path = tmp_path / "runs.txt"
    # A lease far longer than the test: only the stop itself can hand the tasks over.
    a = node("a", lease="300")
    safe = submit(a, "StintAgain", {"path": str(path), "first": 60})
    unsafe = submit(a, "Stint", {"path": str(path), "first": 60})
    wait_sync(a.api, safe, "Running")
    wait_sync(a.api, unsafe, "Running")
    b = node("b", lease="300")
    a_owner = f"a:{pid_of(a)}"
    a.stop()  # SIGTERM; TASKY_GRACE=0 (ServerProcess): the running tasks are stopped at once
    assert a.proc is not None and a.proc.returncode == 0
    wait_sync(b.api, safe, "Completed", timeout=30)
    assert detail(b, safe)["Attempt"] == 2
    failed = wait_sync(b.api, unsafe, "Failed", timeout=30)
    assert f"node {a_owner} stopped (a graceful stop)" in failed["Error"]
    assert "released 2 task(s)" in a.read_log()


def test_a_chain_survives_the_death_of_the_node_that_started_it(node: Node, tmp_path: Path) -> None:
    path = tmp_path / "runs.txt"
    a = node("a")
    body = {
        "name": "survivor",
        "steps": [
            {"name": "first", "worker": "StintAgain", "config": {"path": str(path), "first": 60}},
            {"name": "second", "worker": "Echo", "config": {"value": "${steps.first.result.pid}"}},
        ],
    }
    r = httpx.post(f"{a.api}/chains", json=body, timeout=10)
    assert r.status_code == 201, r.text
    chain_id = r.json()["ChainId"]
    until(lambda: any(n.what == "start" for n in notes(path)), "the first step to start on a")
    b = node("b")
    a.kill()

    def chain() -> dict[str, Any]:
        got: dict[str, Any] = httpx.get(f"{b.api}/chains/{chain_id}", timeout=10).json()
        return got

    until(lambda: chain()["Status"] == "Completed", "the chain to complete on b")
    steps = {s["Name"]: s for s in chain()["Steps"]}
    assert steps["second"]["Output"] == {"value": pid_of(b)}  # the first step ran again on b


def test_acknowledged_submits_survive_kill_9_of_one_of_two_nodes(node: Node) -> None:
    """The crash test over two nodes: both take submits as fast as they come, one is killed
    mid-stream; every TaskId either acknowledged is stored, and the survivor answers for it."""
    a, b = node("a"), node("b")
    acked: dict[str, list[str]] = {"a": [], "b": []}
    stop = threading.Event()
    threads = [
        threading.Thread(target=_hammer, args=(server.api, acked[name], stop))
        for name, server in (("a", a), ("b", b))
    ]
    for thread in threads:
        thread.start()
    try:
        until(lambda: len(acked["a"]) >= 200 and len(acked["b"]) >= 200, "submits on both")
        a.kill()  # mid-stream: requests are in flight
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
    every = acked["a"] + acked["b"]
    with httpx.Client(timeout=10) as client:
        missing = [
            task_id
            for task_id in every
            if client.get(f"{b.api}/tasks/{task_id}/status").status_code != 200
        ]
    assert missing == [], f"{len(missing)} of {len(every)} acknowledged tasks were lost"
