"""Callbacks against real server processes and a receiver of this test on 127.0.0.2.

127.0.0.2 is reached because the servers allow it (--outbound-allow 127.0.0.2/32); 127.0.0.1
is not, so a callback there is refused by policy like any internal address.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tasky.client import Client
from tests.callback_receiver import SECRET, Receiver, receiver, verified
from tests.conftest import ServerProcess, free_port
from tests.helpers import wait_sync

URL_PASSWORD = "hunter2-cb"

__all__ = ["receiver"]  # the fixture


def start(server_factory: Any, *args: str, data_dir: Any = None) -> ServerProcess:
    srv: ServerProcess = server_factory(
        "--workers",
        "tasky.workers.examples",
        "--workers",
        "tests.workers_for_tests",
        *args,
        env={
            "TASKY_OUTBOUND_ALLOW": "127.0.0.2/32",
            "TASKY_CALLBACK_SECRET": SECRET,
            "TASKY_CALLBACK_BACKOFF": "0.2",
        },
        data_dir=data_dir,
    )
    return srv


def submit(srv: ServerProcess, worker: str, config: dict[str, Any], callback: str) -> str:
    r = httpx.post(f"{srv.api}/workers/{worker}", json=config, params={"callback": callback})
    assert r.status_code == 201, r.text
    task_id: str = r.json()["TaskId"]
    return task_id


def callback_of(srv: ServerProcess, path: str, *states: str, timeout: float = 20) -> Any:
    """The ``Callback`` of a task or chain record once its State is one of ``states``."""
    deadline = time.monotonic() + timeout
    while True:
        callback = httpx.get(f"{srv.api}/{path}").json()["Callback"]
        if callback["State"] in states:
            return callback
        assert time.monotonic() < deadline, f"callback stayed {callback}"
        time.sleep(0.05)


def test_callback_arrives_once_signed_with_the_final_record(
    server_factory: Any, receiver: Receiver
) -> None:
    srv = start(server_factory)
    url = receiver.url().replace("://", f"://hook:{URL_PASSWORD}@")
    task_id = submit(srv, "Echo", {"value": {"answer": 42}}, url)
    wait_sync(srv.api, task_id, "Completed")
    callback = callback_of(srv, f"tasks/{task_id}", "Delivered")
    time.sleep(0.6)  # a second delivery would have had time to arrive
    assert len(receiver.calls) == 1
    headers, body = receiver.calls[0]
    assert verified(headers, body)
    assert not verified({"tasky-signature": headers["tasky-signature"]}, body + b" ")
    assert headers["content-type"] == "application/json"
    assert headers["tasky-event"] == "task.finished"
    assert headers["authorization"].startswith("Basic ")  # the URL's credentials, as documented
    record = orjson.loads(body)
    assert record["TaskId"] == task_id and record["Status"] == "Completed"
    assert record["Output"] == {"answer": 42}
    assert record["FinishedAt"] is not None
    # Visible on the task, the URL's credentials never shown.
    assert callback["URL"] == f"http://***@127.0.0.2:{receiver.port}/hook"
    assert [a["StatusCode"] for a in callback["Attempts"]] == [200]
    assert URL_PASSWORD not in httpx.get(f"{srv.api}/tasks/{task_id}").text
    assert URL_PASSWORD not in srv.read_log()


def test_failed_deliveries_are_retried_and_recorded(
    server_factory: Any, receiver: Receiver
) -> None:
    receiver.script = [500, 500]
    srv = start(server_factory)
    task_id = submit(srv, "Flaky", {"message": "nope"}, receiver.url())
    callback = callback_of(srv, f"tasks/{task_id}", "Delivered")
    assert [a["StatusCode"] for a in callback["Attempts"]] == [500, 500, 200]
    assert [a["Error"] for a in callback["Attempts"]] == ["answered 500", "answered 500", None]
    times = [a["At"] for a in callback["Attempts"]]
    assert times == sorted(times) and times[2] - times[0] >= 0.2 + 0.6 - 0.1  # backoff x3
    assert len(receiver.calls) == 3
    # Every attempt carries the failed task's record, signed anew.
    for headers, body in receiver.calls:
        assert verified(headers, body)
        assert orjson.loads(body)["Status"] == "Failed"
    assert [h["tasky-attempt"] for h, _ in receiver.calls] == ["1", "2", "3"]
    assert len({h["tasky-delivery"] for h, _ in receiver.calls}) == 1


def test_refused_target_is_recorded_and_given_up(server_factory: Any) -> None:
    srv = start(server_factory, "--callback-attempts", "3")
    task_id = submit(srv, "Echo", {"value": 1}, f"http://127.0.0.1:{free_port()}/hook")
    callback = callback_of(srv, f"tasks/{task_id}", "Failed")
    assert len(callback["Attempts"]) == 3
    for attempt in callback["Attempts"]:
        assert attempt["StatusCode"] is None
        assert attempt["Error"].startswith("refused by policy: 127.0.0.1")
    assert callback["NextAttemptAt"] is None
    time.sleep(0.5)
    assert len(httpx.get(f"{srv.api}/tasks/{task_id}").json()["Callback"]["Attempts"]) == 3


def test_a_restart_mid_retry_resumes_delivery(server_factory: Any, receiver: Receiver) -> None:
    receiver.then = 503
    first = start(server_factory, "--callback-backoff", "1")
    task_id = submit(first, "Echo", {"value": "x"}, receiver.url())
    callback_of(first, f"tasks/{task_id}", "Pending")
    deadline = time.monotonic() + 20
    while not httpx.get(f"{first.api}/tasks/{task_id}").json()["Callback"]["Attempts"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    first.kill()  # mid-retry: one attempt failed, the next is due in a second
    before = len(receiver.calls)
    receiver.then = 200
    second = start(server_factory, "--callback-backoff", "1", data_dir=first.data_dir)
    callback = callback_of(second, f"tasks/{task_id}", "Delivered")
    codes = [a["StatusCode"] for a in callback["Attempts"]]
    # The failures before the crash stay on record (one may have reached the receiver unrecorded
    # as the server died); the new server sent the delivery that succeeded.
    assert len(codes) >= 2 and set(codes[:-1]) == {503} and codes[-1] == 200
    assert len(receiver.calls) > before
    assert verified(*receiver.calls[-1])


def test_a_task_finishing_across_a_crash_still_calls_back(
    server_factory: Any, receiver: Receiver
) -> None:
    first = start(server_factory)
    task_id = submit(first, "Hold", {"seconds": 1}, receiver.url())
    wait_sync(first.api, task_id, "Running")
    first.kill()  # the new server re-runs it (Hold is idempotent), then calls back
    second = start(server_factory, data_dir=first.data_dir)
    callback = callback_of(second, f"tasks/{task_id}", "Delivered")
    assert [a["StatusCode"] for a in callback["Attempts"]] == [200]
    assert orjson.loads(receiver.calls[0][1])["Status"] == "Completed"


def test_chain_callback_fires_once_when_the_chain_finishes(
    server_factory: Any, receiver: Receiver
) -> None:
    srv = start(server_factory)
    chain = {
        "steps": [
            {"name": "one", "worker": "Echo", "config": {"value": 1}},
            {"name": "two", "worker": "Echo", "config": {"value": "${steps.one.result.value}"}},
        ],
        "callback": receiver.url("/chain"),
    }
    r = httpx.post(f"{srv.api}/chains", json=chain)
    assert r.status_code == 201, r.text
    chain_id = r.json()["ChainId"]
    callback = callback_of(srv, f"chains/{chain_id}", "Delivered")
    time.sleep(0.6)
    assert len(receiver.calls) == 1  # not once per step
    headers, body = receiver.calls[0]
    assert verified(headers, body) and headers["tasky-event"] == "chain.finished"
    record = orjson.loads(body)
    assert record["ChainId"] == chain_id and record["Status"] == "Completed"
    assert [s["Status"] for s in record["Steps"]] == ["Completed", "Completed"]
    assert [a["StatusCode"] for a in callback["Attempts"]] == [200]


def test_named_definition_callback_and_start_override(
    server_factory: Any, receiver: Receiver
) -> None:
    srv = start(server_factory)
    definition = {
        "steps": [{"name": "one", "worker": "Echo", "config": {"value": 1}}],
        "callback": receiver.url("/from-definition").replace("://", f"://u:{URL_PASSWORD}@"),
    }
    assert httpx.put(f"{srv.api}/chain-definitions/one", json=definition).status_code == 201
    shown = httpx.get(f"{srv.api}/chain-definitions/one")
    assert shown.json()["Definition"]["callback"].startswith("http://***@127.0.0.2:")
    assert URL_PASSWORD not in shown.text
    bad = httpx.post(f"{srv.api}/chain-definitions/one/start", json={"callback": "ftp://x/"})
    assert bad.status_code == 422 and "http" in bad.json()["Error"]
    plain = httpx.post(f"{srv.api}/chain-definitions/one/start", json={})
    assert plain.status_code == 201, plain.text
    callback_of(srv, f"chains/{plain.json()['ChainId']}", "Delivered")
    override = httpx.post(
        f"{srv.api}/chain-definitions/one/start", json={"callback": receiver.url("/override")}
    )
    assert override.status_code == 201, override.text
    callback_of(srv, f"chains/{override.json()['ChainId']}", "Delivered")
    assert receiver.paths == ["/from-definition", "/override"]


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.2/x",
        "file:///etc/passwd",
        "http:///no-host",
        "http://127.0.0.2/a b",
        "http://127.0.0.2/\x1b[31m",
        "http://127.0.0.2:99999/",
        "http://127.0.0.2/" + "a" * 2100,
        "/relative",
    ],
)
def test_bad_callback_urls_are_refused_at_submit(server: ServerProcess, url: str) -> None:
    r = httpx.post(f"{server.api}/workers/Echo", json={}, params={"callback": url})
    assert r.status_code == 400, r.text
    chain = {"steps": [{"name": "one", "worker": "Echo", "config": {}}], "callback": url}
    assert httpx.post(f"{server.api}/chains", json=chain).status_code == 422
    assert httpx.get(f"{server.api}/tasks").json()["Tasks"] == []  # nothing was created


def test_without_a_secret_callbacks_are_refused(server: ServerProcess) -> None:
    r = httpx.post(
        f"{server.api}/workers/Echo", json={}, params={"callback": "https://example.com/hook"}
    )
    assert r.status_code == 422
    assert "--callback-secret-file" in r.json()["Error"]
    chain = {"steps": [{"name": "one", "worker": "Echo", "config": {}}]}
    chain["callback"] = "https://example.com/hook"  # type: ignore[assignment]
    assert httpx.post(f"{server.api}/chains", json=chain).status_code == 422
    assert httpx.get(f"{server.api}/tasks").json()["Tasks"] == []
    # A task without a callback shows none.
    task_id = httpx.post(f"{server.api}/workers/Echo", json={}).json()["TaskId"]
    assert httpx.get(f"{server.api}/tasks/{task_id}").json()["Callback"] is None


def test_a_refused_submit_leaves_no_callback_behind(
    server_factory: Any, receiver: Receiver
) -> None:
    srv = start(server_factory)
    r = httpx.post(f"{srv.api}/workers/Echo", json={"nope": 1}, params={"callback": receiver.url()})
    assert r.status_code == 422  # the config is refused: no task, no callback
    task_id = submit(srv, "Echo", {}, receiver.url())
    callback_of(srv, f"tasks/{task_id}", "Delivered")
    assert len(receiver.calls) == 1


def test_python_client_submits_with_a_callback(server_factory: Any, receiver: Receiver) -> None:
    srv = start(server_factory)
    with Client(srv.url) as client:
        task_id = client.submit("Echo", {"value": 3}, callback=receiver.url("/client"))
        callback_of(srv, f"tasks/{task_id}", "Delivered")
        shown = client.get(task_id).callback
    assert shown is not None and shown["State"] == "Delivered"
    assert shown["URL"] == receiver.url("/client")
    assert len(receiver.calls) == 1 and receiver.calls[0][0]["tasky-event"] == "task.finished"


def test_secret_from_a_private_file(
    server_factory: Any, receiver: Receiver, tmp_path: Path
) -> None:
    secret_file = tmp_path / "callback.secret"
    secret_file.write_text("from-the-file-secret\n")
    secret_file.chmod(0o644)
    with pytest.raises(RuntimeError, match="chmod 600"):  # others could read it: no start
        server_factory("--callback-secret-file", str(secret_file), data_dir=tmp_path / "refused")
    secret_file.chmod(0o600)
    srv = server_factory(
        "--workers",
        "tests.workers_for_tests",
        "--callback-secret-file",
        str(secret_file),
        env={"TASKY_OUTBOUND_ALLOW": "127.0.0.2/32"},
    )
    task_id = submit(srv, "Echo", {}, receiver.url())
    callback_of(srv, f"tasks/{task_id}", "Delivered")
    headers, body = receiver.calls[0]
    parts = dict(part.split("=", 1) for part in headers["tasky-signature"].split(","))
    signed = parts["t"].encode() + b"." + body
    expected = hmac.new(b"from-the-file-secret", signed, hashlib.sha256).hexdigest()
    assert parts["v1"] == expected
    assert not verified(headers, body)  # not the environment's secret
