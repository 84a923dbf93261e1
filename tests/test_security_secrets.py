"""Declared secrets reach the work and never come back out: API, events, logs, schema, server log.

Against a real ``tasky serve`` with a TOML command worker (``secret = true``, one through an
environment variable, one through argv) and Python workers with a ``SecretStr`` field (thread and
process mode). Each worker returns the SHA-256 of what it received, so the test sees that the real
value arrived without the value itself ever being printed.
"""

from __future__ import annotations

import hashlib
import secrets
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ServerProcess

PY = sys.executable
# Prints the digests of $DEPLOY_TOKEN and of its first argument, nothing else.
SCRIPT = (
    "import hashlib, json, os, sys; h = lambda s: hashlib.sha256(s.encode()).hexdigest(); "
    "print(json.dumps({'env': h(os.environ['DEPLOY_TOKEN']), 'argv': h(sys.argv[1]), "
    "'target': sys.argv[2]}))"
)
TOML = f"""
[[workers]]
name = "Deploy"
argv = ["{PY}", "-c", "{SCRIPT}", "{{api_key}}", "{{target}}"]
output = "json"
[workers.params.token]
type = "string"
secret = true
env = "DEPLOY_TOKEN"
[workers.params.api_key]
type = "string"
secret = true
pattern = "^key-"
[workers.params.target]
type = "string"
default = "staging"
"""
MASK = "**********"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def srv(server_factory: Any, tmp_path: Path) -> ServerProcess:
    config = tmp_path / "deploy.toml"
    config.write_text(TOML)
    server: ServerProcess = server_factory(
        "--workers", "tests.secret_workers", "--config", str(config), "--root", str(tmp_path)
    )
    return server


def _submit(srv: ServerProcess, worker: str, config: dict[str, Any]) -> str:
    r = httpx.post(f"{srv.api}/workers/{worker}", json=config)
    assert r.status_code == 201, r.text
    task_id: str = r.json()["TaskId"]
    return task_id


def _result(srv: ServerProcess, task_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        r = httpx.get(f"{srv.api}/tasks/{task_id}/result")
        if r.status_code == 200:
            body: dict[str, Any] = r.json()
            assert body["Status"] == "Completed", body
            return body
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} did not finish")


def _everything_shown(srv: ServerProcess, task_ids: list[str]) -> Iterator[str]:
    """Every answer the API, the page and the event stream give about these tasks."""
    api = srv.api
    for path in ("/tasks?limit=1000", "/workers", "/openapi.json", "/metrics"):
        yield httpx.get(api + path).text
    for task_id in task_ids:
        for tail in ("", "/status", "/result", "/logs", "/statistics"):
            yield httpx.get(f"{api}/tasks/{task_id}{tail}").text
    # The whole retained history of events (resume after event 0 of this run), to the first
    # keep-alive that follows the replay.
    with (
        httpx.Client(timeout=10) as client,
        client.stream(
            "GET", f"{api}/events", params={"last_event_id": "0", "heartbeat": "0.2"}
        ) as r,
    ):
        assert r.status_code == 200
        seen: list[str] = []
        for line in r.iter_lines():
            seen.append(line)
            if line.startswith(": keep-alive") or len(seen) > 10_000:
                break
        yield "\n".join(seen)
    yield httpx.get(srv.url + "/").text  # the page itself
    yield srv.read_log()


def test_a_declared_secret_reaches_the_program_and_is_never_shown(srv: ServerProcess) -> None:
    token = "tok-" + secrets.token_hex(12)
    api_key = "key-" + secrets.token_hex(12)
    task_id = _submit(srv, "Deploy", {"token": token, "api_key": api_key, "target": "prod"})
    output = _result(srv, task_id)["Output"]["output"]
    assert output == {"env": _sha(token), "argv": _sha(api_key), "target": "prod"}

    detail = httpx.get(f"{srv.api}/tasks/{task_id}").json()
    assert detail["Config"] == {"token": MASK, "api_key": MASK, "target": "prod"}
    for text in _everything_shown(srv, [task_id]):
        assert token not in text and api_key not in text

    schema = httpx.get(f"{srv.api}/workers/Deploy/info").json()["config_objects"]
    for name in ("token", "api_key"):
        assert schema["properties"][name]["format"] == "password"
        assert schema["properties"][name]["writeOnly"] is True
    assert "default" not in schema["properties"]["token"]


def test_a_secret_is_still_checked_without_echoing_it(srv: ServerProcess) -> None:
    bad = "nope-" + secrets.token_hex(8)
    r = httpx.post(f"{srv.api}/workers/Deploy", json={"token": "t", "api_key": bad})
    assert r.status_code == 422 and r.json()["Fields"][0]["field"] == "api_key"
    assert bad not in r.text
    r = httpx.post(f"{srv.api}/workers/Deploy", json={"token": "a\x00b", "api_key": "key-1"})
    assert r.status_code == 422 and r.json()["Fields"][0]["field"] == "token"
    assert bad not in srv.read_log()


@pytest.mark.parametrize("worker", ["Vault", "VaultProcess"])
def test_a_python_secret_field_reaches_the_worker_and_is_never_shown(
    srv: ServerProcess, worker: str
) -> None:
    password = "pw-" + secrets.token_hex(12)
    task_id = _submit(srv, worker, {"user": "ops", "password": password})
    assert _result(srv, task_id)["Output"] == {"user": "ops", "sha256": _sha(password)}
    # Run again: the stored secret is reused, nobody sends it a second time.
    r = httpx.post(f"{srv.api}/tasks/{task_id}/actions", json={"action": "run"})
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 20
    while httpx.get(f"{srv.api}/tasks/{task_id}").json()["Attempt"] < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert _result(srv, task_id)["Output"] == {"user": "ops", "sha256": _sha(password)}
    assert httpx.get(f"{srv.api}/tasks/{task_id}").json()["Config"]["password"] == MASK
    for text in _everything_shown(srv, [task_id]):
        assert password not in text


def test_updating_a_queued_task_with_what_get_showed_keeps_the_secret(srv: ServerProcess) -> None:
    password = "pw-" + secrets.token_hex(12)
    holder = _submit(srv, "Vault", {"password": "x", "hold": 30})  # takes the only slot
    waiting = _submit(srv, "Vault", {"user": "first", "password": password})
    shown = httpx.get(f"{srv.api}/tasks/{waiting}").json()
    assert shown["Status"] == "Queued" and shown["Config"]["password"] == MASK
    edited = {**shown["Config"], "user": "second"}
    r = httpx.put(f"{srv.api}/tasks/{waiting}", json=edited)
    assert r.status_code == 200, r.text
    assert r.json()["Config"] == {"user": "second", "password": MASK, "hold": 0.0}
    assert password not in r.text
    httpx.post(f"{srv.api}/tasks/{holder}/cancel")
    assert _result(srv, waiting)["Output"] == {"user": "second", "sha256": _sha(password)}


def _chain_done(srv: ServerProcess, chain_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        body: dict[str, Any] = httpx.get(f"{srv.api}/chains/{chain_id}").json()
        if body["Status"] not in ("Queued", "Running"):
            assert body["Status"] == "Completed", body
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.05)


def test_chain_parameters_and_definitions_that_feed_a_secret_are_masked(
    srv: ServerProcess,
) -> None:
    given = "pw-" + secrets.token_hex(12)
    default = "pw-" + secrets.token_hex(12)
    literal = "pw-" + secrets.token_hex(12)
    definition = {
        "parameters": {"pw": default, "who": "ops"},
        "steps": [
            {"name": "a", "worker": "Vault", "config": {"password": "${params.pw}"}},
            {
                "name": "b",
                "worker": "Vault",
                "config": {"password": literal, "user": "${params.who}"},
            },
        ],
    }
    r = httpx.put(f"{srv.api}/chain-definitions/deploy", json=definition)
    assert r.status_code == 201, r.text
    assert r.json()["Parameters"] == {"pw": MASK, "who": "ops"}
    steps = r.json()["Definition"]["steps"]
    assert (
        steps[0]["config"]["password"] == "${params.pw}" and steps[1]["config"]["password"] == MASK
    )

    r = httpx.post(f"{srv.api}/chain-definitions/deploy/start", json={"parameters": {"pw": given}})
    assert r.status_code == 201, r.text
    chain = _chain_done(srv, r.json()["ChainId"])
    assert chain["Parameters"] == {"pw": MASK, "who": "ops"}
    outputs = [step["Output"]["sha256"] for step in chain["Steps"]]
    assert outputs == [_sha(given), _sha(literal)]  # the steps got the real values

    r = httpx.post(
        f"{srv.api}/chains", json={**definition, "parameters": {"pw": given, "who": "x"}}
    )
    assert r.status_code == 201, r.text
    task_ids = [s["TaskId"] for s in _chain_done(srv, r.json()["ChainId"])["Steps"]]
    texts = list(_everything_shown(srv, task_ids))
    for path in (
        "/chains",
        f"/chains/{chain['ChainId']}",
        f"/chains/{r.json()['ChainId']}",
        "/chain-definitions",
        "/chain-definitions/deploy",
    ):
        texts.append(httpx.get(srv.api + path).text)
    for text in texts:
        assert given not in text and default not in text and literal not in text
