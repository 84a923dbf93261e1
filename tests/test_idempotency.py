"""Idempotency-Key on submits and chain starts, against a real server process: a retry answers
200 with the first id and never creates a second task or chain, across restarts and kill -9."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tasky import AsyncClient, Client
from tests.conftest import ServerProcess
from tests.security_helpers import BOOTSTRAP, bearer, create_token, start_with_token_file
from tests.test_cli_client import as_json, tasky

WORKERS = ("--workers", "tests.workers_for_tests")
HEADER = "Idempotency-Key"


def post(server: ServerProcess, path: str, body: Any, key: str | None, **kw: Any) -> httpx.Response:
    headers = {**kw.pop("headers", {}), **({HEADER: key} if key is not None else {})}
    return httpx.post(f"{server.api}{path}", json=body, headers=headers, timeout=10, **kw)


def tasks_of(
    server: ServerProcess, worker: str, headers: dict[str, str] | None = None
) -> list[str]:
    answer = httpx.get(
        f"{server.api}/tasks", params={"worker": worker}, headers=headers or {}, timeout=10
    )
    assert answer.status_code == 200, answer.text
    return [t["TaskId"] for t in answer.json()["Tasks"]]


@pytest.fixture
def server(server_factory: Any) -> ServerProcess:
    started: ServerProcess = server_factory(*WORKERS)
    return started


def test_same_key_and_body_answers_200_with_the_first_task(server: ServerProcess) -> None:
    first = post(server, "/workers/Echo", {"value": 1}, "order-17")
    assert first.status_code == 201, first.text
    task_id = first.json()["TaskId"]
    # The worker's name is case-insensitive in URLs: still the same request.
    again = post(server, "/workers/echo", {"value": 1}, "order-17")
    assert again.status_code == 200, again.text
    assert again.json() == {"TaskId": task_id}
    assert again.headers["Location"] == f"/tasky/v1/tasks/{task_id}"
    assert again.headers["Idempotent-Replayed"] == "true"
    assert tasks_of(server, "Echo") == [task_id]


def test_without_a_key_every_submit_creates_a_task(server: ServerProcess) -> None:
    ids = {post(server, "/workers/Echo", {"value": 1}, None).json()["TaskId"] for _ in range(2)}
    assert len(ids) == 2 and sorted(tasks_of(server, "Echo")) == sorted(ids)


@pytest.mark.parametrize(
    ("path", "body", "params"),
    [
        ("/workers/Echo", {"value": 2}, {}),  # another body
        ("/workers/Hold", {}, {}),  # another worker
        ("/workers/Echo", {"value": 1}, {"retries": "1"}),  # other query parameters
    ],
)
def test_same_key_for_another_request_answers_422(
    server: ServerProcess, path: str, body: Any, params: dict[str, str]
) -> None:
    first = post(server, "/workers/Echo", {"value": 1}, "k")
    assert first.status_code == 201
    other = post(server, path, body, "k", params=params)
    assert other.status_code == 422, other.text
    assert "Idempotency-Key" in other.json()["Error"]
    assert tasks_of(server, "Echo") == [first.json()["TaskId"]]
    assert tasks_of(server, "Hold") == []


def test_unusable_keys_answer_400(server: ServerProcess) -> None:
    for bad in (b"", b"x" * 256, b"caf\xc3\xa9", b"tab\there"):
        answer = httpx.post(
            f"{server.api}/workers/Echo", json={}, headers=[(HEADER.encode(), bad)], timeout=10
        )
        assert answer.status_code == 400, (bad, answer.text)
    twice = httpx.post(
        f"{server.api}/workers/Echo",
        json={},
        headers=[(HEADER.encode(), b"a"), (HEADER.encode(), b"b")],
        timeout=10,
    )
    assert twice.status_code == 400
    assert tasks_of(server, "Echo") == []
    longest = post(server, "/workers/Echo", {}, "~" * 255)
    assert longest.status_code == 201


def test_after_the_window_the_key_makes_a_new_task(server_factory: Any) -> None:
    server: ServerProcess = server_factory(*WORKERS, "--idempotency-window", "1")
    first = post(server, "/workers/Echo", {"value": 1}, "k").json()["TaskId"]
    assert post(server, "/workers/Echo", {"value": 1}, "k").status_code == 200
    time.sleep(1.2)
    later = post(server, "/workers/Echo", {"value": 1}, "k")
    assert later.status_code == 201 and later.json()["TaskId"] != first
    # The new request owns the key now.
    again = post(server, "/workers/Echo", {"value": 1}, "k")
    assert again.status_code == 200 and again.json()["TaskId"] == later.json()["TaskId"]


def test_the_window_comes_from_the_environment(server_factory: Any) -> None:
    server: ServerProcess = server_factory(*WORKERS, env={"TASKY_IDEMPOTENCY_WINDOW": "1"})
    first = post(server, "/workers/Echo", {}, "k").json()["TaskId"]
    time.sleep(1.2)
    assert post(server, "/workers/Echo", {}, "k").json()["TaskId"] != first


def test_keys_survive_a_restart(server_factory: Any) -> None:
    server: ServerProcess = server_factory(*WORKERS)
    task_id = post(server, "/workers/Echo", {"value": 1}, "k").json()["TaskId"]
    server.stop()
    again: ServerProcess = server_factory(*WORKERS, data_dir=server.data_dir)
    retry = post(again, "/workers/Echo", {"value": 1}, "k")
    assert retry.status_code == 200 and retry.json()["TaskId"] == task_id


def test_kill_9_right_after_the_first_201_then_retry(server_factory: Any) -> None:
    server: ServerProcess = server_factory(*WORKERS)
    first = post(server, "/workers/Hold", {"seconds": 30}, "nightly-42")
    assert first.status_code == 201
    server.kill()  # at once: the 201 was the only thing the client saw
    again: ServerProcess = server_factory(*WORKERS, data_dir=server.data_dir)
    retry = post(again, "/workers/Hold", {"seconds": 30}, "nightly-42")
    assert retry.status_code == 200, retry.text
    assert retry.json()["TaskId"] == first.json()["TaskId"]
    assert tasks_of(again, "Hold") == [first.json()["TaskId"]]


def test_kill_9_right_after_a_keyed_batch_then_retry(server_factory: Any) -> None:
    server: ServerProcess = server_factory(*WORKERS)
    batch = [{"seconds": 30}] * 3
    first = post(server, "/workers/Hold/batch", batch, "import-9")
    assert first.status_code == 201, first.text
    server.kill()
    again: ServerProcess = server_factory(*WORKERS, data_dir=server.data_dir)
    retry = post(again, "/workers/Hold/batch", batch, "import-9")
    assert retry.status_code == 200, retry.text
    assert retry.json()["TaskIds"] == first.json()["TaskIds"]
    assert sorted(tasks_of(again, "Hold")) == sorted(first.json()["TaskIds"])


def test_a_burst_of_identical_requests_creates_one_task(server: ServerProcess) -> None:
    def send(_: int) -> httpx.Response:
        return post(server, "/workers/Echo", {"value": "burst"}, "burst-key")

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(send, range(20)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [200] * 19 + [201], [a.text for a in answers]
    ids = {a.json()["TaskId"] for a in answers}
    assert len(ids) == 1 and tasks_of(server, "Echo") == list(ids)


def test_keys_of_two_tokens_do_not_collide(server_factory: Any, tmp_path: Path) -> None:
    server = start_with_token_file(server_factory, tmp_path)
    alice = bearer(create_token(server.api, BOOTSTRAP, "alice", "operator"))
    bob = bearer(create_token(server.api, BOOTSTRAP, "bob", "operator"))
    theirs = post(server, "/workers/Echo", {"value": 1}, "k", headers=alice)
    assert theirs.status_code == 201
    # Bob's same key is his own: a new task, and no way to learn Alice's task id through it.
    mine = post(server, "/workers/Echo", {"value": 1}, "k", headers=bob)
    assert mine.status_code == 201 and mine.json()["TaskId"] != theirs.json()["TaskId"]
    replay = post(server, "/workers/Echo", {"value": 1}, "k", headers=alice)
    assert replay.status_code == 200 and replay.json() == theirs.json()
    assert len(tasks_of(server, "Echo", headers=bearer(BOOTSTRAP))) == 2


CHAIN = {"steps": [{"name": "a", "worker": "Echo", "config": {"value": "${params.v}"}}]}


def chains_of(server: ServerProcess) -> list[str]:
    answer = httpx.get(f"{server.api}/chains", timeout=10)
    return [c["ChainId"] for c in answer.json()["Chains"]]


def test_chain_start_with_a_key(server: ServerProcess) -> None:
    body = {**CHAIN, "parameters": {"v": 1}}
    first = post(server, "/chains", body, "chain-key")
    assert first.status_code == 201, first.text
    chain_id = first.json()["ChainId"]
    again = post(server, "/chains", body, "chain-key")
    assert again.status_code == 200 and again.json() == {"ChainId": chain_id}
    assert again.headers["Location"] == f"/tasky/v1/chains/{chain_id}"
    other = post(server, "/chains", {**CHAIN, "parameters": {"v": 2}}, "chain-key")
    assert other.status_code == 422
    # A task submit with the chain's key is another request too.
    assert post(server, "/workers/Echo", {}, "chain-key").status_code == 422
    assert chains_of(server) == [chain_id]


def test_named_definition_start_with_a_key(server: ServerProcess) -> None:
    definition = {**CHAIN, "parameters": {"v": 0}}
    saved = httpx.put(f"{server.api}/chain-definitions/nightly", json=definition, timeout=10)
    assert saved.status_code == 201, saved.text
    start = {"parameters": {"v": 3}}
    first = post(server, "/chain-definitions/nightly/start", start, "run-1")
    assert first.status_code == 201, first.text
    again = post(server, "/chain-definitions/nightly/start", start, "run-1")
    assert again.status_code == 200 and again.json() == first.json()
    assert post(server, "/chain-definitions/nightly/start", {}, "run-1").status_code == 422
    # The same body through POST /chains is another request.
    assert post(server, "/chains", start, "run-1").status_code == 422
    assert chains_of(server) == [first.json()["ChainId"]]


def test_openapi_documents_the_header(server: ServerProcess) -> None:
    document = httpx.get(f"{server.api}/openapi.json", timeout=10).json()
    for path in ("/tasky/v1/workers/{name}", "/tasky/v1/chains"):
        operation = document["paths"][path]["post"]
        headers = [p for p in operation["parameters"] if p["in"] == "header"]
        assert [h["name"] for h in headers] == [HEADER]
        assert headers[0]["schema"]["maxLength"] == 255
        assert {"200", "201", "400", "422"} <= set(operation["responses"])
    start = document["paths"]["/tasky/v1/chain-definitions/{name}/start"]["post"]
    assert any(p["name"] == HEADER for p in start["parameters"])


def test_python_clients_and_cli_send_the_key(server: ServerProcess) -> None:
    with Client(server.url) as client:
        task_id = client.submit("Echo", {"value": 5}, idempotency_key="py-1")
        assert client.submit("Echo", {"value": 5}, idempotency_key="py-1") == task_id

    async def aio() -> tuple[str, str]:
        async with AsyncClient(server.url) as client:
            first = await client.submit("Echo", {"value": 5}, idempotency_key="py-1")
            other = await client.submit("Echo", {"value": 6}, idempotency_key="aio-1")
            return first, other

    first, other = asyncio.run(aio())
    assert first == task_id and other != task_id
    cli = [
        tasky(
            "submit", "Echo", "value=6", "--idempotency-key", "aio-1", "--url", server.url, "--json"
        )
        for _ in range(2)
    ]
    assert [r.exit_code for r in cli] == [0, 0], cli[0].output
    assert {as_json(r)["TaskId"] for r in cli} == {other}
    assert len(tasks_of(server, "Echo")) == 2


def test_python_client_starts_chains_with_a_key(server: ServerProcess) -> None:
    spec = {**CHAIN, "parameters": {"v": 1}}
    with Client(server.url) as client:
        chain_id = client.create_chain(spec, idempotency_key="c-1")
        assert client.create_chain(spec, idempotency_key="c-1") == chain_id
        saved = httpx.put(f"{server.api}/chain-definitions/daily", json=spec, timeout=10)
        assert saved.status_code == 201, saved.text
        started = client.start_chain("daily", {"v": 2}, idempotency_key="d-1")
        assert client.start_chain("daily", {"v": 2}, idempotency_key="d-1") == started
    assert sorted(chains_of(server)) == sorted([chain_id, started])
