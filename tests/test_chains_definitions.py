"""Named chain definitions: saved over the API or declared in the TOML config file, started by
name with parameters."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tasky.chains import schemas
from tasky.server import build_app
from tasky.settings import Settings
from tasky.workers.registry import WorkerRegistry
from tests.test_chains_api import steps_of, wait_chain
from tests.test_chains_durable import running

API = "/tasky/v1"

GREETING = {
    "description": "Say hello, then count the letters.",
    "parameters": {"who": "world", "times": 1},
    "steps": [
        {"name": "hello", "worker": "Echo", "config": {"value": "hello ${params.who}"}},
        {
            "name": "again",
            "worker": "Echo",
            "config": {"value": ["${steps.hello.result.string_output}", "${params.times}"]},
        },
    ],
}


async def test_save_list_start_delete(client: httpx.AsyncClient) -> None:
    r = await client.put(f"{API}/chain-definitions/greet", json=GREETING)
    assert r.status_code == 201, r.text
    saved = schemas.DefinitionDetail.model_validate(r.json())
    assert saved.Source == "api"
    assert saved.Parameters == {"who": "world", "times": 1}
    r = await client.put(f"{API}/chain-definitions/greet", json=GREETING | {"description": "v2"})
    assert r.status_code == 200
    assert r.json()["Description"] == "v2"
    assert r.json()["CreatedAt"] == saved.CreatedAt
    listed = schemas.DefinitionList.model_validate(
        (await client.get(f"{API}/chain-definitions")).json()
    )
    assert [d.Name for d in listed.Definitions] == ["greet"]
    detail = (await client.get(f"{API}/chain-definitions/greet")).json()
    assert detail["Definition"]["steps"][0]["worker"] == "Echo"

    # Defaults, then overrides.
    r = await client.post(f"{API}/chain-definitions/greet/start")
    assert r.status_code == 201
    body = await wait_chain(client, r.json()["ChainId"], "Completed")
    assert body["Definition"] == "greet"
    assert body["Name"] == "greet"
    assert body["Parameters"] == {"who": "world", "times": 1}
    assert body["Result"] == {"value": ["hello world", 1]}
    r = await client.post(
        f"{API}/chain-definitions/greet/start", json={"parameters": {"who": "Ada", "times": 3}}
    )
    assert r.status_code == 201
    body = await wait_chain(client, r.json()["ChainId"], "Completed")
    assert steps_of(body)["again"]["Output"] == {"value": ["hello Ada", 3]}

    r = await client.delete(f"{API}/chain-definitions/greet")
    assert r.status_code == 200
    assert (await client.get(f"{API}/chain-definitions/greet")).status_code == 404
    assert (await client.delete(f"{API}/chain-definitions/greet")).status_code == 404
    assert (await client.post(f"{API}/chain-definitions/greet/start")).status_code == 404


async def test_definition_errors(client: httpx.AsyncClient) -> None:
    bad = {"steps": [{"name": "s", "worker": "Hold", "config": {"seconds": "x"}}]}
    r = await client.put(f"{API}/chain-definitions/broken", json=bad)
    assert r.status_code == 422
    assert r.json()["Step"] == "s"
    assert (await client.get(f"{API}/chain-definitions/broken")).status_code == 404
    r = await client.put(f"{API}/chain-definitions/{'x' * 101}", json=GREETING)
    assert r.status_code == 422
    assert "definition name" in r.json()["Error"]

    typed = {
        "parameters": {"secs": 0.1},
        "steps": [{"name": "wait", "worker": "Hold", "config": {"seconds": "${params.secs}"}}],
    }
    assert (await client.put(f"{API}/chain-definitions/typed", json=typed)).status_code == 201
    start = f"{API}/chain-definitions/typed/start"
    r = await client.post(start, json={"parameters": {"nope": 1}})
    assert r.status_code == 422
    assert r.json()["Error"] == "unknown parameter(s) nope; definition 'typed' declares: secs"
    # A parameter value the step's worker refuses is caught before anything starts.
    r = await client.post(start, json={"parameters": {"secs": "soon"}})
    assert r.status_code == 422
    assert r.json()["Step"] == "wait"
    assert "seconds" in r.json()["Error"]
    r = await client.post(start, json={"parameters": [1]})
    assert r.status_code == 422
    r = await client.post(start, json={"parameters": {}, "extra": 1})
    assert r.status_code == 422
    assert (await client.get(f"{API}/chains")).json()["Chains"] == []


CONFIG = """
[[workers]]
name = "Say"
argv = ["echo", "{text}"]
[workers.params.text]
type = "string"

[chains.nightly]
description = "From the config file"
parameters = { greeting = "hi" }

[[chains.nightly.steps]]
name = "first"
worker = "Echo"
config = { value = "${params.greeting}" }

[[chains.nightly.steps]]
name = "fan"
[[chains.nightly.steps.parallel]]
name = "left"
worker = "Echo"
config = { value = "${steps.first.result.string_output} left" }
[[chains.nightly.steps.parallel]]
name = "right"
worker = "Echo"
config = { value = "right" }
"""


def _chains_only(text: str) -> str:
    return text[text.index("[chains.nightly]") :]


async def test_definitions_from_the_config_file(
    settings: Settings, registry: WorkerRegistry, tmp_path: Path
) -> None:
    path = tmp_path / "tasky.toml"
    path.write_text(_chains_only(CONFIG))
    settings.config_files = [path]
    async with running(settings, registry) as client:
        listed = (await client.get(f"{API}/chain-definitions")).json()["Definitions"]
        assert [(d["Name"], d["Source"]) for d in listed] == [("nightly", str(path))]
        r = await client.put(f"{API}/chain-definitions/nightly", json=GREETING)
        assert r.status_code == 409
        assert "comes from" in r.json()["Error"]
        assert (await client.delete(f"{API}/chain-definitions/nightly")).status_code == 409
        r = await client.post(
            f"{API}/chain-definitions/nightly/start", json={"parameters": {"greeting": "hey"}}
        )
        assert r.status_code == 201
        body = await wait_chain(client, r.json()["ChainId"], "Completed")
        assert body["Result"] == {
            "left": {"string_output": "hey left"},
            "right": {"string_output": "right"},
        }


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            '[[chains.bad.steps]]\nname = "s"\nworker = "Ghost"\n',
            "chain 'bad': step 's': unknown worker 'Ghost'",
        ),
        ("[chains]\nbad = 3\n", "chains.bad must be a table"),
        ("[chains.x\n", "is not valid TOML"),
    ],
)
async def test_bad_config_file_stops_start_up(
    settings: Settings, registry: WorkerRegistry, tmp_path: Path, text: str, says: str
) -> None:
    path = tmp_path / "tasky.toml"
    path.write_text(text)
    settings.config_files = [path]
    app = build_app(settings, registry=registry)
    with pytest.raises(ValueError, match=says) as info:
        async with app.starlette.router.lifespan_context(app.starlette):
            pass
    assert str(path) in str(info.value)


def test_served_config_file_declares_workers_and_chains(
    server_factory: Any, tmp_path: Path
) -> None:
    """`tasky serve --config` reads the same file for workers and for chains."""
    path = tmp_path / "tasky.toml"
    path.write_text(CONFIG)
    server = server_factory(
        "--workers", "tests.workers_for_tests", "--config", str(path), "--root", str(tmp_path)
    )
    names = [w["name"] for w in httpx.get(f"{server.api}/workers", timeout=10).json()]
    assert "Say" in names
    assert "Echo" in names
    r = httpx.post(f"{server.api}/chain-definitions/nightly/start", timeout=10)
    assert r.status_code == 201, r.text
    chain_id = r.json()["ChainId"]
    for _ in range(400):
        body = httpx.get(f"{server.api}/chains/{chain_id}", timeout=10).json()
        if body["Status"] != "Running":
            break
        time.sleep(0.05)
    assert body["Status"] == "Completed", body
    assert steps_of(body)["left"]["Output"] == {"string_output": "hi left"}


def test_serve_refuses_a_bad_chain_before_listening(server_factory: Any, tmp_path: Path) -> None:
    path = tmp_path / "tasky.toml"
    path.write_text('[[chains.bad.steps]]\nname = "s"\nworker = "Ghost"\n')
    server = server_factory(
        "--workers", "tasky.workers.examples", "--config", str(path), start=False
    )
    with pytest.raises(RuntimeError, match="server exited early") as info:
        server.start()
    assert f"tasky: config file {path}: chain 'bad': step 's': unknown worker 'Ghost'" in str(
        info.value
    )
    assert "Traceback" not in str(info.value)
    assert server.proc.returncode == 2
