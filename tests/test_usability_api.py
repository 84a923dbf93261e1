"""What the API says matches what it means (issue 15): shapes, filters, messages, an index."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tasky.api import schemas
from tasky.api.events import EVENT_TYPES
from tasky.store.histogram import BASE, bucket_of
from tests.helpers import API, action, submit, wait_for


async def _json(client: httpx.AsyncClient, path: str, code: int = 200, **params: Any) -> Any:
    r = await client.get(API + path, params=params)
    assert r.status_code == code, r.text
    return r.json()


# -- Output is always an object ---------------------------------------------------------------
async def test_a_canceled_task_answers_an_empty_output_object(client: httpx.AsyncClient) -> None:
    task_id = await submit(client, "Sleeper", {"seconds": 60})
    await wait_for(client, task_id, "Running")
    await client.post(f"{API}/tasks/{task_id}/cancel")
    await wait_for(client, task_id, "Canceled")
    result = await _json(client, f"/tasks/{task_id}/result")
    assert result["Output"] == {}
    schemas.TaskResult.model_validate(result)
    detail = await _json(client, f"/tasks/{task_id}")
    assert detail["Output"] == {}
    assert [a["Output"] for a in detail["Attempts"]] == [{}]
    schemas.TaskDetail.model_validate(detail)


async def test_a_failed_and_a_queued_task_answer_an_empty_output(
    client: httpx.AsyncClient,
) -> None:
    failed = await submit(client, "Flaky", {"message": "no"})
    await wait_for(client, failed, "Failed")
    assert (await _json(client, f"/tasks/{failed}/result"))["Output"] == {}
    first = await submit(client, "Hold", {"seconds": 60})
    queued = await submit(client, "Hold", {"seconds": 60})
    await wait_for(client, first, "Running")
    assert (await _json(client, f"/tasks/{queued}"))["Output"] == {}
    for task_id in (first, queued):
        await client.post(f"{API}/tasks/{task_id}/cancel")


async def test_a_chain_step_not_completed_has_an_empty_output(client: httpx.AsyncClient) -> None:
    spec = {
        "steps": [
            {"name": "hold", "worker": "Hold", "config": {"seconds": 60}},
            {"name": "after", "worker": "Echo", "config": {"value": 1}},
        ]
    }
    r = await client.post(f"{API}/chains", json=spec)
    assert r.status_code == 201, r.text
    chain_id = r.json()["ChainId"]
    chain = await _json(client, f"/chains/{chain_id}")
    assert [s["Output"] for s in chain["Steps"]] == [{}, {}]
    await client.post(f"{API}/chains/{chain_id}/actions", json={"action": "cancel"})


# -- Attempts: one meaning, the running attempt included ---------------------------------------
async def test_attempts_lists_the_running_attempt_too(client: httpx.AsyncClient) -> None:
    task_id = await submit(client, "Hold", {"seconds": 60})
    await wait_for(client, task_id, "Running")
    detail = await _json(client, f"/tasks/{task_id}")
    [running] = detail["Attempts"]
    assert running["Attempt"] == 1 and running["Status"] == "Running"
    assert running["StartedAt"] == detail["StartedAt"] and running["FinishedAt"] is None
    stats = await _json(client, f"/tasks/{task_id}/statistics")
    [timing] = stats["Attempts"]
    assert timing["Status"] == "Running" and timing["RunTimeSeconds"] >= 0
    schemas.TaskStatistics.model_validate(stats)

    assert (await action(client, task_id, "pause")).status_code == 200
    await wait_for(client, task_id, "Paused")
    [paused] = (await _json(client, f"/tasks/{task_id}"))["Attempts"]
    assert paused["Status"] == "Paused" and paused["FinishedAt"] is None

    await client.post(f"{API}/tasks/{task_id}/cancel")
    await wait_for(client, task_id, "Canceled")
    [ended] = (await _json(client, f"/tasks/{task_id}"))["Attempts"]
    assert ended["Status"] == "Canceled" and ended["FinishedAt"] is not None


async def test_attempts_in_statistics_is_the_record_list_with_timings(
    client: httpx.AsyncClient,
) -> None:
    task_id = await submit(client, "Echo", {"value": 1})
    await wait_for(client, task_id, "Completed")
    await action(client, task_id, "run")
    await wait_for(client, task_id, "Completed")
    detail = await _json(client, f"/tasks/{task_id}")
    stats = await _json(client, f"/tasks/{task_id}/statistics")
    assert stats["Attempt"] == detail["Attempt"] == 2
    assert [(a["Attempt"], a["Status"]) for a in stats["Attempts"]] == [
        (a["Attempt"], a["Status"]) for a in detail["Attempts"]
    ]
    assert stats["TotalRunTimeSeconds"] == pytest.approx(
        sum(a["RunTimeSeconds"] for a in stats["Attempts"])
    )


async def test_a_queued_retry_has_no_attempt_under_way(client: httpx.AsyncClient) -> None:
    """A task waiting for its retry lists the failed attempt only (it has not started again)."""
    task_id = await submit(client, "Flaky", {"fail_times": 1}, retries=1)
    await wait_for(client, task_id, "Completed")
    detail = await _json(client, f"/tasks/{task_id}")
    assert [(a["Attempt"], a["Status"]) for a in detail["Attempts"]] == [
        (1, "Failed"),
        (2, "Completed"),
    ]


# -- worker statistics ------------------------------------------------------------------------
async def test_worker_statistics_histogram_is_in_seconds(client: httpx.AsyncClient) -> None:
    task_id = await submit(client, "Hold", {"seconds": 0.3})
    await wait_for(client, task_id, "Completed")
    stats = await _json(client, "/workers/Hold/statistics")
    schemas.WorkerStatistics.model_validate(stats)
    [bucket] = stats["RunTimeHistogram"]
    run = (await _json(client, f"/tasks/{task_id}"))["DurationSeconds"]
    assert bucket["Count"] == 1
    assert bucket["FromSeconds"] <= run < bucket["ToSeconds"] * 1.0001
    assert bucket["ToSeconds"] == pytest.approx(bucket["FromSeconds"] * BASE, rel=1e-3)
    assert bucket["FromSeconds"] == pytest.approx(BASE ** bucket_of(run) / 1000, rel=1e-3)


async def test_one_run_has_its_own_time_as_every_percentile(client: httpx.AsyncClient) -> None:
    task_id = await submit(client, "Hold", {"seconds": 0.2})
    await wait_for(client, task_id, "Completed")
    stats = await _json(client, "/workers/Hold/statistics")
    average = stats["AverageRunTimeSeconds"]
    assert set(stats["RunTimePercentilesSeconds"].values()) == {average}


async def test_tasks_performed_counts_runs_and_total_counts_tasks(
    client: httpx.AsyncClient,
) -> None:
    task_id = await submit(client, "Echo", {"value": 1})
    await wait_for(client, task_id, "Completed")
    for _ in range(2):
        await action(client, task_id, "run")
        await wait_for(client, task_id, "Completed")
    stats = await _json(client, "/workers/Echo/statistics")
    assert stats["Total"] == 1 and stats["TasksPerformed"] == 3
    doc = await _json(client, "/openapi.json")
    described = doc["components"]["schemas"]["WorkerStatistics"]["properties"]
    assert "can exceed Total" in described["TasksPerformed"]["description"]


# -- workers: one shape in the list and in /info ----------------------------------------------
async def test_a_worker_without_config_looks_the_same_in_the_list_and_info(
    client: httpx.AsyncClient,
) -> None:
    listed = {w["name"]: w for w in await _json(client, "/workers")}
    for name in ("Ifconfig", "Sleeper"):
        info = await _json(client, f"/workers/{name}/info")
        assert ("config_objects" in info) == ("config_objects" in listed[name]), name
    assert "config_objects" not in listed["Ifconfig"]
    assert "config_objects" in listed["Sleeper"]


async def test_get_a_worker_by_its_path_answers_its_info(client: httpx.AsyncClient) -> None:
    info = await _json(client, "/workers/sleeper")
    assert info == await _json(client, "/workers/Sleeper/info")
    missing = await _json(client, "/workers/nope", 404)
    assert "nope" in missing["Error"] and "Sleeper" in missing["Error"]
    assert (await client.delete(f"{API}/workers/sleeper")).status_code == 405


# -- filters that could only match nothing are refused ----------------------------------------
async def test_chain_status_filter_knows_chain_statuses(client: httpx.AsyncClient) -> None:
    body = await _json(client, "/chains", 400, status="Queued")
    for status in ("Running", "Paused", "Completed", "Failed", "Canceled"):
        assert status in body["Error"]
    assert "Queued" in body["Error"] and "use" not in body["Error"].split("not")[-1]
    assert (await _json(client, "/chains", status="running"))["Chains"] == []


async def test_unknown_event_type_is_400_naming_the_types(client: httpx.AsyncClient) -> None:
    body = await _json(client, "/events", 400, type="bogus")
    for kind in EVENT_TYPES:
        assert kind in body["Error"]
    body = await _json(client, "/events", 400, type="task.status,tasks")
    assert "'tasks'" in body["Error"]


async def test_repeated_status_is_refused_not_half_applied(client: httpx.AsyncClient) -> None:
    r = await client.get(f"{API}/tasks?status=Queued&status=Running")
    assert r.status_code == 400 and "more than once: status" in r.json()["Error"]


# -- messages people can read -----------------------------------------------------------------
async def test_timeout_limit_is_said_in_days(client: httpx.AsyncClient) -> None:
    r = await client.post(f"{API}/workers/Sleeper?timeout=99999999", json={})
    assert r.status_code == 400
    error = r.json()["Error"]
    assert "30 days" in error and "e+" not in error and "seconds" in error


@pytest.mark.parametrize("path", ["/tasks", "/chains", "/audit"])
async def test_a_bad_cursor_says_where_cursors_come_from(
    client: httpx.AsyncClient, path: str
) -> None:
    for bad in ("99999999999999999999", "²", "-1"):
        body = await _json(client, path, 400, cursor=bad)
        assert "NextCursor" in body["Error"], body
        assert "4611686018427387904" not in body["Error"]


async def test_a_non_ascii_definition_name_is_refused_saying_ascii(
    client: httpx.AsyncClient,
) -> None:
    spec = {"steps": [{"name": "a", "worker": "Echo", "config": {}}]}
    r = await client.put(f"{API}/chain-definitions/résumé", json=spec)
    assert r.status_code == 422 and "ASCII" in r.json()["Error"]
    # A trailing newline is no part of a name either (a $ in a pattern lets it through).
    r = await client.put(f"{API}/chain-definitions/ok%0A", json=spec)
    assert r.status_code == 422, r.text


async def test_a_long_id_is_shortened_when_echoed(client: httpx.AsyncClient) -> None:
    long_id = "a" * 5000
    for kind in ("tasks", "chains", "workers"):
        r = await client.get(f"{API}/{kind}/{long_id}")
        assert r.status_code == 404, kind
        error = r.json()["Error"]
        assert len(error) < 300 and "characters)" in error, (kind, error[:300])


async def test_list_order_is_documented_where_it_is_chosen(client: httpx.AsyncClient) -> None:
    doc = await _json(client, "/openapi.json")
    params = {p["name"]: p for p in doc["paths"]["/tasky/v1/tasks"]["get"]["parameters"]}
    assert "oldest first (default" in params["order"]["description"]
    assert "newest first" in params["order"]["description"]


# -- the root of the API ----------------------------------------------------------------------
async def test_the_api_root_points_to_docs_page_and_document(client: httpx.AsyncClient) -> None:
    for path in (API, API + "/"):
        r = await client.get(path)
        assert r.status_code == 200, r.text
        index = r.json()
        schemas.ApiIndex.model_validate(index)
    for key in ("Docs", "OpenAPI", "Workers", "Tasks"):
        assert (await client.get(index[key])).status_code == 200, key
    page = await client.get(index["Page"])
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert (await client.get(f"{API}?x=1")).status_code == 400


async def test_every_documented_query_route_refuses_unknown_parameters(
    client: httpx.AsyncClient,
) -> None:
    for path in ("/audit", "/tokens", "/openapi.json", "/docs"):
        r = await client.get(f"{API}{path}?bogus=1")
        assert r.status_code == 400 and "bogus" in r.json()["Error"], path
