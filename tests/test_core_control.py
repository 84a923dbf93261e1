"""Concurrency limit, cancel, pause/resume, restart, update, timeout and retry."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.helpers import API, action, status, submit, wait_for, wait_progress


async def test_limit_queues_fifo_instead_of_rejecting(client: httpx.AsyncClient) -> None:
    first = await submit(client, "Hold", {"seconds": 30})
    waiting = [await submit(client, "Hold", {"seconds": 0}) for _ in range(3)]
    await wait_for(client, first, "Running")
    for task_id in waiting:
        assert (await status(client, task_id))["Status"] == "Queued"
    stats = (await client.get(f"{API}/workers/hold/statistics")).json()
    assert stats["RunningNow"] == 1 and stats["QueuedNow"] == 3
    r = await client.post(f"{API}/tasks/{first}/cancel")
    assert r.status_code == 200 and r.json()["Status"] == "Canceled"
    finished_order = []
    for task_id in waiting:
        await wait_for(client, task_id, "Completed")
        detail = (await client.get(f"{API}/tasks/{task_id}")).json()
        finished_order.append(detail["StartedAt"])
    assert finished_order == sorted(finished_order), "queued tasks must start in FIFO order"


async def test_cancel_queued_and_paused_at_once(client: httpx.AsyncClient) -> None:
    blocker = await submit(client, "Hold", {"seconds": 30})
    queued = await submit(client, "Hold", {"seconds": 1})
    held = await submit(client, "Hold", {"seconds": 1})
    assert (await action(client, held, "pause")).json()["Status"] == "Paused"
    for task_id in (queued, held):
        r = await client.post(f"{API}/tasks/{task_id}/cancel")
        assert r.status_code == 200 and r.json()["Status"] == "Canceled"
    r = await client.post(f"{API}/tasks/{queued}/cancel")
    assert r.status_code == 409 and r.json()["Status"] == "Canceled"
    await action(client, blocker, "cancel")
    await wait_for(client, blocker, "Canceled")


async def test_cancel_running_async_stops_the_coroutine(client: httpx.AsyncClient) -> None:
    task_id = await submit(client, "Sleeper", {"seconds": 60})
    await wait_for(client, task_id, "Running")
    r = await client.post(f"{API}/tasks/{task_id}/cancel")
    assert r.json()["Status"] == "Canceled"
    result = (await client.get(f"{API}/tasks/{task_id}/result")).json()
    assert result["Status"] == "Canceled" and result["Output"] == {}


async def test_cancel_running_thread_at_checkpoint(client: httpx.AsyncClient) -> None:
    task_id = await submit(client, "Spin", {"seconds": 60})
    await wait_for(client, task_id, "Running")
    r = await action(client, task_id, "cancel")
    assert r.json()["Status"] == "Canceled"


@pytest.mark.slow  # waits out a clock of seconds
async def test_pause_resume_running_task_stops_its_clock(client: httpx.AsyncClient) -> None:
    task_id = await submit(client, "Sleeper", {"seconds": 1.5})
    await wait_progress(client, task_id)
    r = await action(client, task_id, "pause")
    assert r.status_code == 200 and r.json()["Status"] == "Paused"
    paused_progress = (await status(client, task_id))["Progress"]
    await asyncio.sleep(2.0)  # longer than the whole task: it must not finish while paused
    body = await status(client, task_id)
    assert body["Status"] == "Paused" and body["Progress"] == paused_progress
    r = await action(client, task_id, "resume")
    assert r.json()["Status"] == "Running"
    await wait_for(client, task_id, "Completed")


async def test_pause_thread_mode_blocks_at_checkpoint(client: httpx.AsyncClient) -> None:
    task_id = await submit(client, "Spin", {"seconds": 0.5})
    await wait_for(client, task_id, "Running")
    assert (await action(client, task_id, "pause")).json()["Status"] == "Paused"
    await asyncio.sleep(1.0)
    assert (await status(client, task_id))["Status"] == "Paused"
    await action(client, task_id, "resume")
    await wait_for(client, task_id, "Completed")


async def test_pause_queued_task_holds_it_back(client: httpx.AsyncClient) -> None:
    blocker = await submit(client, "Hold", {"seconds": 30})
    held = await submit(client, "Hold", {"seconds": 0})
    after = await submit(client, "Hold", {"seconds": 0})
    assert (await action(client, held, "pause")).json()["Status"] == "Paused"
    await action(client, blocker, "cancel")
    await wait_for(client, after, "Completed")
    assert (await status(client, held))["Status"] == "Paused"
    assert (await action(client, held, "resume")).json()["Status"] == "Queued"
    await wait_for(client, held, "Completed")


async def test_unsupported_action_is_409(client: httpx.AsyncClient) -> None:
    task_id = await submit(client, "NoPause", {"seconds": 30})
    await wait_for(client, task_id, "Running")
    r = await action(client, task_id, "pause")
    assert r.status_code == 409
    assert "does not support pause" in r.json()["Error"]
    assert (await action(client, task_id, "resume")).status_code == 409
    await action(client, task_id, "cancel")


async def test_illegal_moves_are_409_with_status(client: httpx.AsyncClient) -> None:
    task_id = await submit(client, "Echo", {"value": 1})
    await wait_for(client, task_id, "Completed")
    for name in ("pause", "resume", "cancel"):
        r = await action(client, task_id, name)
        assert r.status_code == 409, name
        assert r.json()["Status"] == "Completed"
    r = await action(client, task_id, "explode")
    assert r.status_code == 422


async def test_run_restarts_with_attempt_history(client: httpx.AsyncClient) -> None:
    task_id = await submit(client, "Echo", {"value": "again"})
    await wait_for(client, task_id, "Completed")
    r = await action(client, task_id, "run")
    assert r.status_code == 200
    await wait_for(client, task_id, "Completed")
    detail = (await client.get(f"{API}/tasks/{task_id}")).json()
    assert detail["Attempt"] == 2
    assert [a["Attempt"] for a in detail["Attempts"]] == [1, 2]
    assert all(a["Status"] == "Completed" for a in detail["Attempts"])
    stats = (await client.get(f"{API}/task/{task_id}/statistics")).json()
    assert stats["Attempt"] == 2
    assert [a["Attempt"] for a in stats["Attempts"]] == [1, 2]
    assert all(a["RunTimeSeconds"] >= 0 for a in stats["Attempts"])


async def test_update_config_of_queued_task(client: httpx.AsyncClient) -> None:
    blocker = await submit(client, "Hold", {"seconds": 30})
    queued = await submit(client, "Hold", {"seconds": 5})
    r = await client.put(f"{API}/task/{queued}", json={"seconds": 0})
    assert r.status_code == 200 and r.json()["Config"] == {"seconds": 0.0}
    r = await client.put(f"{API}/task/{queued}", json={"seconds": -1})
    assert r.status_code == 422 and r.json()["Fields"][0]["field"] == "seconds"
    r = await client.put(f"{API}/task/{blocker}", json={"seconds": 1})
    assert r.status_code == 409
    await action(client, blocker, "cancel")
    await wait_for(client, queued, "Completed")
    assert (await client.get(f"{API}/tasks/{queued}/result")).json()["Output"] == {"held": 0.0}
    r = await client.put(f"{API}/task/{queued}", json={"seconds": 1})
    assert r.status_code == 409


async def test_timeout_fails_with_a_clear_error(client: httpx.AsyncClient) -> None:
    task_id = await submit(client, "Sleeper", {"seconds": 30}, timeout=0.3)
    body = await wait_for(client, task_id, "Failed")
    assert "timed out" in body["Error"]


async def test_timeout_stops_thread_work_too(client: httpx.AsyncClient) -> None:
    task_id = await submit(client, "Spin", {"seconds": 30}, timeout=0.3)
    body = await wait_for(client, task_id, "Failed")
    assert "timed out" in body["Error"]


async def test_retry_with_backoff_then_success(client: httpx.AsyncClient) -> None:
    task_id = await submit(client, "Flaky", {"fail_times": 1}, retries=2)
    await wait_for(client, task_id, "Completed")
    detail = (await client.get(f"{API}/tasks/{task_id}")).json()
    assert detail["Attempt"] == 2
    assert detail["Attempts"][0]["Status"] == "Failed"
    assert "boom" in detail["Attempts"][0]["Error"]
    assert detail["Attempts"][1]["Status"] == "Completed"


async def test_retries_exhausted_fail(client: httpx.AsyncClient) -> None:
    task_id = await submit(client, "Flaky", {"fail_times": 5}, retries=1)
    body = await wait_for(client, task_id, "Failed")
    assert "RuntimeError: boom" in body["Error"]
    detail = (await client.get(f"{API}/tasks/{task_id}")).json()
    assert [a["Status"] for a in detail["Attempts"]] == ["Failed", "Failed"]


async def test_progress_and_logs_visible_while_running(client: httpx.AsyncClient) -> None:
    task_id = await submit(client, "Sleeper", {"seconds": 3})
    await wait_progress(client, task_id)
    logs = (await client.get(f"{API}/tasks/{task_id}/logs")).json()
    assert logs["Status"] == "Running"
    assert logs["Lines"] and logs["Lines"][0]["Line"].startswith("slept 1")
    newer = (await client.get(f"{API}/tasks/{task_id}/logs", params={"after": logs["Next"]})).json()
    assert all(line["Seq"] > logs["Next"] for line in newer["Lines"])
    await action(client, task_id, "cancel")


@pytest.mark.slow  # waits out a clock of seconds
async def test_completed_task_keeps_its_last_progress_message(client: httpx.AsyncClient) -> None:
    task_id = await submit(client, "Sleeper", {"seconds": 2})
    body = await wait_for(client, task_id, "Completed")
    assert body["Progress"] == 1.0
    assert body["ProgressMessage"] == "2 of 2 s"


async def test_cancel_right_as_a_queued_task_is_claimed(client: httpx.AsyncClient) -> None:
    """Freeing a slot starts a claim of the next task; a cancel landing in that window works."""
    for _ in range(5):
        blocker = await submit(client, "Hold", {"seconds": 30})
        queued = await submit(client, "Hold", {"seconds": 30})
        await wait_for(client, blocker, "Running")
        assert (await client.post(f"{API}/tasks/{blocker}/cancel")).status_code == 200
        r = await client.post(f"{API}/tasks/{queued}/cancel")
        assert r.status_code in (200, 202), r.text
        await wait_for(client, queued, "Canceled")


@pytest.mark.slow  # waits out a clock of seconds
async def test_paused_time_does_not_count_toward_the_timeout(client: httpx.AsyncClient) -> None:
    task_id = await submit(client, "Sleeper", {"seconds": 1.2}, timeout=2.0)
    await wait_progress(client, task_id)
    assert (await action(client, task_id, "pause")).json()["Status"] == "Paused"
    await asyncio.sleep(2.5)  # paused past the whole timeout
    assert (await status(client, task_id))["Status"] == "Paused"
    await action(client, task_id, "resume")
    await wait_for(client, task_id, "Completed")
