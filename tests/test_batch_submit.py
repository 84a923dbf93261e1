"""Batch submit (POST /workers/{name}/batch) in process: all or none, caps, refusals, the docs."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from typing import Any

import httpx
import orjson
import pytest

from tasky.api import TaskyApp, create_app
from tasky.api.schemas import BatchValidationErrorBody, TasksCreated
from tasky.engine import Engine
from tasky.settings import Settings
from tasky.workers.registry import WorkerRegistry
from tests.helpers import API, wait_for

BATCH = f"{API}/workers/Echo/batch"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.max_queued = 3
    settings.max_batch_items = 5
    settings.max_batch_bytes = 600
    settings.max_body_bytes = 200
    return settings


async def task_ids(client: httpx.AsyncClient, worker: str) -> list[str]:
    r = await client.get(f"{API}/tasks", params={"worker": worker, "limit": 1000})
    return [t["TaskId"] for t in r.json()["Tasks"]]


async def test_creates_every_task_in_order(client: httpx.AsyncClient) -> None:
    r = await client.post(BATCH, json=[{"value": n} for n in range(4)])
    assert r.status_code == 201, r.text
    ids = TasksCreated.model_validate(r.json()).TaskIds
    assert len(set(ids)) == 4 and all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert await task_ids(client, "Echo") == ids  # stored in the batch's order
    for n, task_id in enumerate(ids):
        await wait_for(client, task_id, "Completed")
        result = (await client.get(f"{API}/tasks/{task_id}/result")).json()
        assert result["Output"] == {"value": n}


async def test_timeout_and_retries_apply_to_each_task(client: httpx.AsyncClient) -> None:
    r = await client.post(BATCH, json=[{}, {}], params={"timeout": "9.5", "retries": "2"})
    assert r.status_code == 201, r.text
    for task_id in r.json()["TaskIds"]:
        task = (await client.get(f"{API}/tasks/{task_id}")).json()
        assert (task["Timeout"], task["Retries"]) == (9.5, 2)


async def test_invalid_configs_name_their_indexes_and_nothing_is_created(
    client: httpx.AsyncClient,
) -> None:
    batch: list[Any] = [{"value": 1}, {"bogus": 1}, {"value": 2}, "not an object"]
    r = await client.post(BATCH, json=batch)
    assert r.status_code == 422, r.text
    body = BatchValidationErrorBody.model_validate(r.json())
    assert body.Indexes == [1, 3]
    assert [(f.index, f.field) for f in body.Fields] == [(1, "[1].bogus"), (3, "[3]")]
    assert "index 1, 3" in body.Error and "no task was created" in body.Error
    assert await task_ids(client, "Echo") == []


async def test_a_body_that_is_not_an_array_of_configs(client: httpx.AsyncClient) -> None:
    r = await client.post(BATCH, json={"value": 1})
    assert r.status_code == 422 and "JSON array" in r.json()["Error"]
    r = await client.post(BATCH, content=b"[{", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "malformed JSON" in r.json()["Error"]
    r = await client.post(BATCH, json=[])
    assert r.status_code == 201 and r.json() == {"TaskIds": []}
    assert await task_ids(client, "Echo") == []


async def test_too_many_configs_or_bytes_is_413(client: httpx.AsyncClient) -> None:
    r = await client.post(BATCH, json=[{}] * 6)  # max_batch_items is 5
    assert r.status_code == 413, r.text
    assert "at most 5 configs, this one 6" in r.json()["Error"]
    r = await client.post(BATCH, json=[{"value": "x" * 120}] * 5)  # over 600 bytes
    assert r.status_code == 413 and "limit of 600 bytes" in r.json()["Error"]
    # Within the batch's bytes, but one config alone is over the single-submit limit (200).
    r = await client.post(BATCH, json=[{"value": 1}, {"value": "y" * 300}])
    assert r.status_code == 413, r.text
    assert r.json()["Index"] == 1 and "one task's config" in r.json()["Error"]
    assert await task_ids(client, "Echo") == []


async def test_the_queue_cap_applies_to_the_whole_batch(client: httpx.AsyncClient) -> None:
    hold = f"{API}/workers/Hold/batch"
    # Hold runs one at a time and 3 may wait: 1 + 3 fit, one more does not.
    r = await client.post(hold, json=[{"seconds": 30}] * 5)
    assert r.status_code == 429, r.text
    assert r.headers["Retry-After"].isdigit()
    assert await task_ids(client, "Hold") == []
    r = await client.post(hold, json=[{"seconds": 30}] * 4)
    assert r.status_code == 201, r.text
    r = await client.post(hold, json=[{"seconds": 30}])
    assert r.status_code == 429, r.text
    assert len(await task_ids(client, "Hold")) == 4


async def test_refused_like_a_single_submit(app: TaskyApp, client: httpx.AsyncClient) -> None:
    r = await client.post(f"{API}/workers/Nope/batch", json=[{}])
    assert r.status_code == 404 and "no worker named" in r.json()["Error"]
    r = await client.post(BATCH, json=[{}], params={"callback": "http://example.com/"})
    assert r.status_code == 400 and "unknown query parameter" in r.json()["Error"]
    r = await client.post(BATCH, json=[{}], params={"retries": "-1"})
    assert r.status_code == 400 and "retries" in r.json()["Error"]
    # The request guard: a body that is not JSON, a foreign page's request.
    r = await client.post(BATCH, content=b"[{}]", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415, r.text
    r = await client.post(BATCH, json=[{}], headers={"Origin": "http://evil.example"})
    assert r.status_code == 403, r.text
    assert await task_ids(client, "Echo") == []
    engine: Engine = app.state.engine
    engine.drain(30)
    r = await client.post(BATCH, json=[{}])
    assert r.status_code == 503 and 1 <= int(r.headers["Retry-After"]) <= 30
    assert await task_ids(client, "Echo") == []


async def test_a_token_is_needed_when_the_server_has_one(
    settings: Settings, registry: WorkerRegistry
) -> None:
    app = create_app(dataclasses.replace(settings, token="s3cret"), registry=registry)
    async with app.starlette.router.lifespan_context(app.starlette):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            r = await client.post(BATCH, json=[{}])
            assert r.status_code == 401, r.text
            r = await client.post(BATCH, json=[{}], headers={"Authorization": "Bearer s3cret"})
            assert r.status_code == 201, r.text


async def test_the_openapi_document_describes_it(client: httpx.AsyncClient) -> None:
    document = (await client.get(f"{API}/openapi.json")).json()
    operation = document["paths"][f"{API}/workers/{{name}}/batch"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert (
        body["type"] == "array"
        and {"$ref": "#/components/schemas/Config_Echo"} in (body["items"]["oneOf"])
    )
    assert [p["name"] for p in operation["parameters"]] == [
        "name",
        "timeout",
        "retries",
        "node",
        "label",
        "wait_for_node",
        "Idempotency-Key",
    ]
    created = operation["responses"]["201"]["content"]["application/json"]["schema"]
    assert created == {"$ref": "#/components/schemas/TasksCreated"}
    invalid = operation["responses"]["422"]["content"]["application/json"]["schema"]
    assert invalid == {"$ref": "#/components/schemas/BatchValidationErrorBody"}
    assert {"413", "429", "503"} <= set(operation["responses"])
    assert orjson.dumps(document)  # the whole document stays JSON


async def test_a_keyed_batch_is_created_once_and_replayed(
    app: TaskyApp, client: httpx.AsyncClient
) -> None:
    keyed = {"Idempotency-Key": "nightly-42"}
    body = [{"value": i} for i in range(5)]
    first = await client.post(BATCH, json=body, headers=keyed)
    assert first.status_code == 201, first.text
    ids = first.json()["TaskIds"]
    assert len(ids) == 5
    # The retry (a lost answer, say) gets the same ids and creates nothing.
    again = await client.post(BATCH, json=body, headers=keyed)
    assert again.status_code == 200, again.text
    assert again.json() == {"TaskIds": ids}
    assert again.headers["Idempotent-Replayed"] == "true"
    assert sorted(await task_ids(client, "Echo")) == sorted(ids)
    # The same key with another body, query or worker is a client mistake: 422, nothing made.
    for other in (
        client.post(BATCH, json=body[:4], headers=keyed),
        client.post(BATCH, json=body, headers=keyed, params={"retries": "2"}),
        client.post(f"{API}/workers/Hold/batch", json=[{"seconds": 0}], headers=keyed),
    ):
        r = await other
        assert r.status_code == 422 and "different request" in r.json()["Error"], r.text
    # A single submit with a batch's key is another request too.
    r = await client.post(f"{API}/workers/Echo", json={"value": 1}, headers=keyed)
    assert r.status_code == 422, r.text
    assert sorted(await task_ids(client, "Echo")) == sorted(ids)


async def test_concurrent_keyed_batches_create_one_batch(
    app: TaskyApp, client: httpx.AsyncClient
) -> None:
    keyed = {"Idempotency-Key": "once"}
    body = [{"value": i} for i in range(3)]
    answers = await asyncio.gather(
        *(client.post(BATCH, json=body, headers=keyed) for _ in range(12))
    )
    codes = sorted(r.status_code for r in answers)
    assert codes == [200] * 11 + [201], [r.text for r in answers]
    assert len({tuple(r.json()["TaskIds"]) for r in answers}) == 1
    assert len(await task_ids(client, "Echo")) == 3


async def test_a_keyed_batch_that_is_refused_keeps_no_key(
    app: TaskyApp, client: httpx.AsyncClient
) -> None:
    keyed = {"Idempotency-Key": "fix-and-retry"}
    r = await client.post(BATCH, json=[{"value": 1}, {"nope": 1}], headers=keyed)
    assert r.status_code == 422, r.text
    # Fixed and sent again with the same key: it is created now.
    r = await client.post(BATCH, json=[{"value": 1}, {"value": 2}], headers=keyed)
    assert r.status_code == 201, r.text
    assert len(await task_ids(client, "Echo")) == 2
