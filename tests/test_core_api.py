"""Routes, shapes and error answers of the HTTP API."""

from __future__ import annotations

import httpx

from tasky.api import schemas
from tests.helpers import API, submit, wait_for


async def _count_tasks(client: httpx.AsyncClient) -> int:
    return len((await client.get(f"{API}/tasks", params={"limit": 1000})).json()["Tasks"])


async def test_workers_list_has_seed_shape(client: httpx.AsyncClient) -> None:
    workers = (await client.get(f"{API}/workers/")).json()
    by_name = {w["name"]: w for w in workers}
    assert {"CopyFile", "Ifconfig", "Sleeper"} <= set(by_name)
    assert set(by_name["CopyFile"]["config_objects"]["properties"]) == {"source", "destination"}
    assert "config_objects" not in by_name["Ifconfig"]
    assert by_name["Sleeper"]["description"].startswith("Sleeps for a minute")
    for w in workers:
        schemas.WorkerSummary.model_validate(w)
    info = (await client.get(f"{API}/workers/SLEEPER/info")).json()
    assert info["config_objects"]["properties"]["seconds"]["default"] == 60
    assert info["actions"] == ["cancel", "pause", "resume"]
    copy_info = (await client.get(f"{API}/workers/copyfile/info")).json()
    assert copy_info["usage"].endswith("start at the first root.")


async def test_unknown_worker_and_task_are_404(client: httpx.AsyncClient) -> None:
    r = await client.post(f"{API}/workers/nope", json={})
    assert r.status_code == 404 and "Sleeper" in r.json()["Error"]
    for path in (
        "/tasks/0123456789abcdef0123456789abcdef",
        "/tasks/not-an-id/status",
        "/tasks/0123456789abcdef0123456789abcdef/result",
        "/workers/nope/statistics",
    ):
        r = await client.get(API + path)
        assert r.status_code == 404 and "Error" in r.json(), path
    r = await client.post(
        f"{API}/tasks/0123456789abcdef0123456789abcdef/actions", json={"action": "cancel"}
    )
    assert r.status_code == 404


async def test_invalid_config_is_422_and_creates_nothing(client: httpx.AsyncClient) -> None:
    before = await _count_tasks(client)
    r = await client.post(f"{API}/workers/sleeper", json={"seconds": "soon", "extra": 1})
    assert r.status_code == 422
    fields = {f["field"] for f in r.json()["Fields"]}
    assert fields == {"seconds", "extra"}
    r = await client.post(f"{API}/workers/sleeper", json=[1, 2])
    assert r.status_code == 422
    r = await client.post(f"{API}/workers/copyfile", json={})
    assert r.status_code == 422
    assert await _count_tasks(client) == before


async def test_malformed_json_is_400_and_creates_nothing(client: httpx.AsyncClient) -> None:
    before = await _count_tasks(client)
    r = await client.post(
        f"{API}/workers/sleeper",
        content=b'{"seconds": 1',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400 and "malformed JSON" in r.json()["Error"]
    assert await _count_tasks(client) == before


async def test_body_over_limit_is_413(client: httpx.AsyncClient) -> None:
    big = b'{"value": "' + b"x" * (1 << 20) + b'"}'
    json_type = {"content-type": "application/json"}
    r = await client.post(f"{API}/workers/echo", content=big, headers=json_type)
    assert r.status_code == 413 and "limit" in r.json()["Error"]

    async def chunks():  # no Content-Length: the limit still holds while streaming
        for _ in range(20):
            yield b"x" * 65536 * 2

    r = await client.post(f"{API}/workers/echo", content=chunks(), headers=json_type)
    assert r.status_code == 413


async def test_empty_body_means_default_config(client: httpx.AsyncClient) -> None:
    r = await client.post(f"{API}/workers/ifconfig")
    assert r.status_code == 201


async def test_bad_query_parameters_are_400(client: httpx.AsyncClient) -> None:
    for params in (
        {"limit": "0"},
        {"limit": "many"},
        {"status": "Sleeping"},
        {"cursor": "-3"},
        {"order": "sideways"},
    ):
        r = await client.get(f"{API}/tasks", params=params)
        assert r.status_code == 400, params
    r = await client.post(f"{API}/workers/echo", params={"timeout": "-1"}, json={})
    assert r.status_code == 400
    r = await client.post(f"{API}/workers/echo", params={"retries": "x"}, json={})
    assert r.status_code == 400


async def test_unknown_path_and_method_are_json(client: httpx.AsyncClient) -> None:
    r = await client.get("/tasky/v1/nothing/here/at/all")
    assert r.status_code == 404 and r.json()["Error"].startswith("no such path")
    r = await client.delete(f"{API}/workers")
    assert r.status_code == 405 and "DELETE" in r.json()["Error"]


async def test_result_of_unfinished_task_is_409(client: httpx.AsyncClient) -> None:
    task_id = await submit(client, "Sleeper", {"seconds": 30})
    r = await client.get(f"{API}/tasks/{task_id}/result")
    assert r.status_code == 409
    assert r.json()["Status"] in ("Queued", "Running") and "result" in r.json()["Error"]
    await client.post(f"{API}/tasks/{task_id}/cancel")


async def test_slash_and_task_spellings(client: httpx.AsyncClient) -> None:
    task_id = await submit(client, "Echo", {"value": {"a": 1}})
    await wait_for(client, task_id, "Completed")
    for path in (
        f"/tasks/{task_id}/result",
        f"/task/{task_id}/result/",
        f"/tasks/{task_id}/result/",
        f"/task/{task_id}/result",
    ):
        r = await client.get(API + path)
        assert r.status_code == 200 and r.json()["Output"] == {"a": 1}, path
    r = await client.get(f"{API}/task/")
    assert r.status_code == 200 and "Tasks" in r.json()


async def test_output_is_always_an_object(client: httpx.AsyncClient) -> None:
    for value, expected in (
        ("text", {"string_output": "text"}),
        (3, {"value": 3}),
        ([1], {"value": [1]}),
        (None, {}),
    ):
        task_id = await submit(client, "Echo", {"value": value})
        await wait_for(client, task_id, "Completed")
        r = await client.get(f"{API}/tasks/{task_id}/result")
        schemas.TaskResult.model_validate(r.json())
        assert r.json()["Output"] == expected


async def test_list_filters_and_cursor_pagination(client: httpx.AsyncClient) -> None:
    ids = [await submit(client, "Echo", {"value": i}) for i in range(7)]
    for task_id in ids:
        await wait_for(client, task_id, "Completed")
    sleeper = await submit(client, "Sleeper", {"seconds": 30})
    seen: list[str] = []
    cursor = None
    while True:
        params = {"worker": "echo", "limit": "3", **({"cursor": cursor} if cursor else {})}
        page = (await client.get(f"{API}/tasks", params=params)).json()
        schemas.TaskList.model_validate(page)
        seen += [t["TaskId"] for t in page["Tasks"]]
        cursor = page["NextCursor"]
        if cursor is None:
            break
    assert seen == ids
    running = (await client.get(f"{API}/tasks", params={"status": "running"})).json()["Tasks"]
    assert [t["TaskId"] for t in running] == [sleeper]
    newest = (await client.get(f"{API}/tasks", params={"order": "desc", "limit": 1})).json()
    assert newest["Tasks"][0]["TaskId"] == sleeper
    done = (await client.get(f"{API}/tasks", params={"status": "Completed"})).json()["Tasks"]
    assert all("Duration" in t for t in done)
    await client.post(f"{API}/tasks/{sleeper}/cancel")


async def test_worker_and_task_statistics(client: httpx.AsyncClient) -> None:
    ok = [await submit(client, "Echo", {"value": 1}) for _ in range(3)]
    bad = await submit(client, "Flaky", {"fail_times": 9})
    for task_id in ok:
        await wait_for(client, task_id, "Completed")
    await wait_for(client, bad, "Failed")
    stats = (await client.get(f"{API}/echo/statistics")).json()
    schemas.WorkerStatistics.model_validate(stats)
    assert stats["TasksPerformed"] == 3 and stats["ByStatus"]["Completed"] == 3
    assert stats["FailureRate"] == 0.0
    assert stats["RunTimePercentilesSeconds"]["p50"] is not None
    assert stats["AverageQueueWaitSeconds"] is not None
    flaky = (await client.get(f"{API}/workers/flaky/statistics")).json()
    assert flaky["FailureRate"] == 1.0 and flaky["ByStatus"]["Failed"] == 1
    task_stats = (await client.get(f"{API}/task/{ok[0]}/statistics")).json()
    schemas.TaskStatistics.model_validate(task_stats)
    assert task_stats["RunTimeSeconds"] >= 0 and task_stats["QueueWaitSeconds"] >= 0


async def test_whole_record(client: httpx.AsyncClient) -> None:
    task_id = await submit(client, "Echo", {"value": "x"})
    await wait_for(client, task_id, "Completed")
    detail = (await client.get(f"{API}/tasks/{task_id}")).json()
    schemas.TaskDetail.model_validate(detail)
    assert detail["Config"] == {"value": "x"} and detail["Worker"] == "Echo"
    logs = (await client.get(f"{API}/tasks/{task_id}/logs")).json()
    assert [ln["Line"] for ln in logs["Lines"]] == ["echo 'x'"]


async def test_openapi_and_docs_are_served(client: httpx.AsyncClient) -> None:
    doc = (await client.get(f"{API}/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    assert "post" in doc["paths"]["/tasky/v1/workers/{name}"]
    assert "Config_Sleeper" in doc["components"]["schemas"]
    for method, path in (
        ("GET", "/tasks/{id}/status"),
        ("PUT", "/tasks/{id}"),
        ("POST", "/tasks/{id}/actions"),
        ("GET", "/{name}/statistics"),
    ):
        assert method.lower() in doc["paths"][f"/tasky/v1{path}"]
    events = doc["paths"]["/tasky/v1/events"]["get"]["responses"]["200"]
    assert "text/event-stream" in events["content"]
    page = await client.get(f"{API}/docs")
    assert page.status_code == 200 and "swagger-ui" in page.text
    js = await client.get(f"{API}/docs/static/swagger-ui-bundle.js")
    assert js.status_code == 200
