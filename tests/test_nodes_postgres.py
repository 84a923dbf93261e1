"""Two real nodes on one PostgreSQL database: targets, ?nodes=all, the registry on either node,
a killed node seen dead after its lease, a name held by a live node refused."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tasky.client import Client
from tests.conftest import ServerFactory, ServerProcess
from tests.helpers import wait_sync
from tests.pg import emptied_shared_schema
from tests.test_cli_client import as_json, tasky

pytestmark = [pytest.mark.postgres, pytest.mark.server]

WORKERS = ("--workers", "tasky.workers.examples", "--workers", "tests.workers_for_tests")
LEASE = "2"


@pytest.fixture
def nodes(server_factory: ServerFactory, tmp_path: Path) -> tuple[ServerProcess, ServerProcess]:
    url = emptied_shared_schema()
    for name in ("a", "b", "twin"):
        (tmp_path / name).mkdir()  # each node's data directory's parent holds its log
    common = (*WORKERS, "--db", url, "--lease", LEASE, "--poll-interval", "0.2")
    a = server_factory(*common, "--node", "node-a", data_dir=tmp_path / "a" / "data")
    b = server_factory(
        *common, "--node", "node-b", "--label", "gpu", data_dir=tmp_path / "b" / "data"
    )
    return a, b


def post(server: ServerProcess, worker: str, config: Any = None, **query: str) -> httpx.Response:
    return httpx.post(f"{server.api}/workers/{worker}", json=config or {}, params=query, timeout=10)


def created(server: ServerProcess, worker: str, config: Any = None, **query: str) -> str:
    r = post(server, worker, config, **query)
    assert r.status_code == 201, r.text
    task_id: str = r.json()["TaskId"]
    return task_id


def ran_on(node: ServerProcess, task_id: str) -> str:
    wait_sync(node.api, task_id, "Completed")
    body = httpx.get(f"{node.api}/tasks/{task_id}", timeout=10).json()
    ran: str = body["Node"]
    return ran


def listed(node: ServerProcess) -> dict[str, dict[str, Any]]:
    r = httpx.get(f"{node.api}/nodes", timeout=10)
    assert r.status_code == 200, r.text
    return {n["Name"]: n for n in r.json()["Nodes"]}


def test_targets_run_only_where_they_point(nodes: tuple[ServerProcess, ServerProcess]) -> None:
    a, b = nodes
    # Submitted to a, every one: those for b must still run on b only.
    for_b = [created(a, "Echo", {"value": n}, node="node-b") for n in range(5)]
    for_gpu = [created(a, "Echo", {"value": n}, label="gpu") for n in range(5)]
    for_a = [created(b, "Echo", {"value": n}, node="node-a") for n in range(3)]
    assert {ran_on(a, t) for t in for_b} == {"node-b"}
    assert {ran_on(b, t) for t in for_gpu} == {"node-b"}
    assert {ran_on(a, t) for t in for_a} == {"node-a"}
    detail = httpx.get(f"{b.api}/tasks/{for_gpu[0]}", timeout=10).json()
    assert detail["Target"] == "label:gpu"
    assert [attempt["Node"] for attempt in detail["Attempts"]] == ["node-b"]
    # The CLI and the client send targets too.
    by_cli = tasky("submit", "Echo", "value=9", "--node", "node-b", "--url", a.url, "--json")
    assert by_cli.exit_code == 0, by_cli.output
    assert ran_on(a, as_json(by_cli)["TaskId"]) == "node-b"
    with Client(a.url) as client:
        assert ran_on(a, client.submit("Echo", {"value": 10}, label="gpu")) == "node-b"
    # Nobody else has the label: a label no live node carries is refused, not left waiting.
    r = post(a, "Echo", label="arm")
    assert r.status_code == 422 and "labelled arm" in r.json()["Error"], r.text


def test_nodes_all_makes_one_task_per_live_node(nodes: tuple[ServerProcess, ServerProcess]) -> None:
    a, b = nodes
    r = post(b, "Echo", {"value": "everywhere"}, nodes="all")
    assert r.status_code == 201, r.text
    tasks = r.json()["Tasks"]
    assert sorted(tasks) == ["node-a", "node-b"]
    assert {name: ran_on(a, task_id) for name, task_id in tasks.items()} == {
        "node-a": "node-a",
        "node-b": "node-b",
    }


def test_either_node_lists_both_and_a_killed_one_is_dead_after_its_lease(
    nodes: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = nodes
    for node in (a, b):
        seen = listed(node)
        assert sorted(seen) == ["node-a", "node-b"]
        assert seen["node-b"]["Labels"] == ["gpu"] and seen["node-a"]["Labels"] == []
        assert all(n["Alive"] for n in seen.values())
        assert "Echo" in seen["node-a"]["Workers"]
    # The CLI and the client read the same list.
    table = tasky("nodes", "--url", b.url)
    assert table.exit_code == 0, table.output
    assert "node-a" in table.stdout and "gpu" in table.stdout
    assert [n["Name"] for n in as_json(tasky("nodes", "--url", a.url, "--json"))] == [
        "node-a",
        "node-b",
    ]
    with Client(a.url) as client:
        assert [(n.name, n.alive) for n in client.nodes()] == [("node-a", True), ("node-b", True)]
    held = created(a, "Hold", {"seconds": 60}, node="node-a")
    wait_sync(a.api, held, "Running")
    assert listed(b)["node-a"]["RunningTasks"] == 1
    a.kill()
    deadline = time.monotonic() + 30
    while listed(b)["node-a"]["Alive"]:
        assert time.monotonic() < deadline, "the killed node still shows alive"
        time.sleep(0.2)
    seen = listed(b)
    assert seen["node-a"]["StoppedAt"] is None and seen["node-b"]["Alive"]
    # Nothing live answers to node-a now: 422, unless the caller wants the task to wait.
    r = post(b, "Echo", node="node-a")
    assert r.status_code == 422 and "named node-a" in r.json()["Error"], r.text
    waiting = created(b, "Echo", node="node-a", wait_for_node="true")
    assert httpx.get(f"{b.api}/tasks/{waiting}", timeout=10).json()["Status"] == "Queued"
    r = post(b, "Echo", nodes="all")
    assert r.status_code == 201 and list(r.json()["Tasks"]) == ["node-b"], r.text


def test_a_second_live_process_of_one_name_is_refused(
    nodes: tuple[ServerProcess, ServerProcess], server_factory: ServerFactory, tmp_path: Path
) -> None:
    a, _ = nodes
    db = next(arg for arg in zip(a.args, a.args[1:], strict=False) if arg[0] == "--db")[1]
    twin = server_factory(
        *WORKERS, "--db", db, "--node", "node-a", data_dir=tmp_path / "twin" / "data", start=False
    )
    with pytest.raises(RuntimeError, match="another live node is named node-a"):
        twin.start()
    assert listed(a)["node-a"]["Alive"]
