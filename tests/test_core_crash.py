"""Durability: what got a 2xx survives SIGKILL; interrupted work is re-queued or failed."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import httpx

from tests.conftest import ServerFactory, ServerProcess
from tests.helpers import wait_sync


def _hammer(api: str, acked: list[str], stop: threading.Event) -> None:
    """Submit as fast as possible over several connections until ``stop`` or an error."""

    async def one_connection() -> None:
        async with httpx.AsyncClient(timeout=5) as client:
            while not stop.is_set():
                try:
                    r = await client.post(f"{api}/workers/hold", json={"seconds": 0})
                except httpx.HTTPError:
                    return  # the server died mid-request: that submit was never acknowledged
                if r.status_code == 201:
                    acked.append(r.json()["TaskId"])

    async def main() -> None:
        await asyncio.gather(*(one_connection() for _ in range(8)))

    asyncio.run(main())


def test_acknowledged_submits_survive_sigkill(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    data = tmp_path / "crash-data"
    all_acked: list[str] = []
    for round_no in range(3):
        srv: ServerProcess = server_factory("--workers", "tests.workers_for_tests", data_dir=data)
        acked: list[str] = []
        stop = threading.Event()
        thread = threading.Thread(target=_hammer, args=(srv.api, acked, stop))
        thread.start()
        deadline = time.monotonic() + 10
        while len(acked) < 200 * (round_no + 1) and time.monotonic() < deadline:
            time.sleep(0.01)
        srv.kill()  # mid-stream: requests are in flight
        stop.set()
        thread.join(10)
        assert acked, "no submit was acknowledged before the kill"
        all_acked += acked

    srv = server_factory("--workers", "tests.workers_for_tests", data_dir=data)
    with httpx.Client() as client:
        missing = [
            task_id
            for task_id in all_acked
            if client.get(f"{srv.api}/tasks/{task_id}/status").status_code != 200
        ]
    assert missing == [], f"{len(missing)} of {len(all_acked)} acknowledged tasks were lost"


def test_restart_keeps_status_result_and_logs(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    data = tmp_path / "keep"
    srv: ServerProcess = server_factory("--workers", "tests.workers_for_tests", data_dir=data)
    done = httpx.post(f"{srv.api}/workers/echo", json={"value": "kept"}).json()["TaskId"]
    wait_sync(srv.api, done, "Completed")
    # Idempotent and running: re-queued and run again after the crash.
    blocker = httpx.post(f"{srv.api}/workers/hold", json={"seconds": 60}).json()["TaskId"]
    # Not idempotent and running: Failed with an Error that says the server stopped.
    fragile = httpx.post(f"{srv.api}/workers/nopause", json={"seconds": 60}).json()["TaskId"]
    wait_sync(srv.api, fragile, "Running")
    srv.kill()

    srv2: ServerProcess = server_factory("--workers", "tests.workers_for_tests", data_dir=data)
    result = httpx.get(f"{srv2.api}/tasks/{done}/result").json()
    assert result["Output"] == {"string_output": "kept"}
    logs = httpx.get(f"{srv2.api}/tasks/{done}/logs").json()
    assert [ln["Line"] for ln in logs["Lines"]] == ["echo 'kept'"]
    failed = wait_sync(srv2.api, fragile, "Failed")
    assert "server stopped" in failed["Error"]
    wait_sync(srv2.api, blocker, "Running")
    detail = httpx.get(f"{srv2.api}/tasks/{blocker}").json()
    assert detail["Attempt"] == 2
    assert detail["Attempts"][0]["Status"] == "Failed"
    httpx.post(f"{srv2.api}/tasks/{blocker}/cancel")


def test_queued_tasks_run_after_restart(server_factory: ServerFactory, tmp_path: Path) -> None:
    data = tmp_path / "queue"
    srv: ServerProcess = server_factory("--workers", "tests.workers_for_tests", data_dir=data)
    blocker = httpx.post(f"{srv.api}/workers/hold", json={"seconds": 60}).json()["TaskId"]
    queued = [
        httpx.post(f"{srv.api}/workers/hold", json={"seconds": 0}).json()["TaskId"]
        for _ in range(3)
    ]
    srv.kill()
    srv2: ServerProcess = server_factory("--workers", "tests.workers_for_tests", data_dir=data)
    wait_sync(srv2.api, blocker, "Running")
    httpx.post(f"{srv2.api}/tasks/{blocker}/cancel")
    for task_id in queued:
        wait_sync(srv2.api, task_id, "Completed")
