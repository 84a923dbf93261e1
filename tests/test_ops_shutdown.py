"""Graceful shutdown of a real server process: SIGTERM drains, the grace, a second signal."""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from tests.conftest import ServerFactory, ServerProcess
from tests.helpers import wait_sync
from tests.test_process_server import descendants, wait_gone

TEST_WORKERS = ("--workers", "tasky.workers.examples", "--workers", "tests.workers_for_tests")


def serve(server_factory: ServerFactory, grace: float, *workers: str) -> ServerProcess:
    srv: ServerProcess = server_factory(*(workers or TEST_WORKERS), "--grace", str(grace))
    return srv


def restart(srv: ServerProcess) -> None:
    """Start the stopped server again on its data, with no grace (so the test ends quickly)."""
    at = srv.args.index("--grace")
    srv.args[at + 1] = "0"
    srv.start()


def post(srv: ServerProcess, worker: str, config: dict[str, Any]) -> str:
    r = httpx.post(f"{srv.api}/workers/{worker}", json=config)
    assert r.status_code == 201, r.text
    task_id: str = r.json()["TaskId"]
    return task_id


def signal_server(srv: ServerProcess, sig: int = signal.SIGTERM) -> None:
    assert srv.proc is not None
    srv.proc.send_signal(sig)


def wait_draining(srv: ServerProcess, timeout: float = 5.0) -> httpx.Response:
    """The first 503 a submit gets once the server drains.

    The probe's config is invalid (422 before the drain): a probe that came too early creates
    no task, while a draining server refuses it before looking at the config.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = httpx.post(f"{srv.api}/workers/Hold", json={"seconds": -1})
        if r.status_code == 503:
            return r
        assert r.status_code == 422, r.text
        time.sleep(0.02)
    raise AssertionError("the server did not start draining")


def exit_code(srv: ServerProcess, within: float) -> int:
    assert srv.proc is not None
    return srv.proc.wait(within)


def task(srv: ServerProcess, task_id: str) -> dict[str, Any]:
    r = httpx.get(f"{srv.api}/tasks/{task_id}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_running_task_finishes_within_the_grace_while_submits_get_503(
    server_factory: ServerFactory,
) -> None:
    srv = serve(server_factory, 20)
    task_id = post(srv, "Hold", {"seconds": 2})
    wait_sync(srv.api, task_id, "Running")
    began = time.monotonic()
    signal_server(srv)
    refused = wait_draining(srv)
    assert int(refused.headers["Retry-After"]) >= 1
    assert "shutting down" in refused.json()["Error"]
    valid = httpx.post(f"{srv.api}/workers/Echo", json={"value": 1})
    assert valid.status_code == 503, valid.text
    # Reads go on while draining, and the task is still running.
    assert task(srv, task_id)["Status"] == "Running"
    assert exit_code(srv, 15) == 0
    # It stopped once the task was done, not at the end of the grace.
    assert time.monotonic() - began < 15
    restart(srv)
    assert task(srv, task_id)["Status"] == "Completed"
    listed = httpx.get(f"{srv.api}/tasks").json()["Tasks"]
    assert [t["TaskId"] for t in listed] == [task_id]  # the refused submits created nothing


def test_tasks_longer_than_the_grace_are_requeued_or_failed_at_the_next_start(
    server_factory: ServerFactory,
) -> None:
    srv = serve(server_factory, 1)
    again = post(srv, "Hold", {"seconds": 60})  # idempotent: re-run after the restart
    once = post(srv, "Spin", {"seconds": 60})  # not idempotent: failed after the restart
    wait_sync(srv.api, again, "Running")
    wait_sync(srv.api, once, "Running")
    began = time.monotonic()
    signal_server(srv)
    assert exit_code(srv, 10) == 0
    assert time.monotonic() - began >= 1  # the grace was given
    restart(srv)
    rerun = wait_sync(srv.api, again, "Running")
    assert task(srv, again)["Attempt"] == 2, rerun
    failed = task(srv, once)
    assert failed["Status"] == "Failed"
    assert "server stopped" in failed["Error"]


def test_second_sigterm_stops_at_once(server_factory: ServerFactory) -> None:
    srv = serve(server_factory, 60)
    task_id = post(srv, "Hold", {"seconds": 60})
    wait_sync(srv.api, task_id, "Running")
    signal_server(srv)
    wait_draining(srv)
    began = time.monotonic()
    signal_server(srv)
    assert exit_code(srv, 5) == 0
    assert time.monotonic() - began < 3
    restart(srv)
    wait_sync(srv.api, task_id, "Running")
    assert task(srv, task_id)["Attempt"] == 2  # recorded as interrupted, re-queued


def test_sigint_after_sigterm_stops_at_once(server_factory: ServerFactory) -> None:
    srv = serve(server_factory, 60)
    task_id = post(srv, "Spin", {"seconds": 60})
    wait_sync(srv.api, task_id, "Running")
    signal_server(srv)
    wait_draining(srv)
    began = time.monotonic()
    signal_server(srv, signal.SIGINT)
    assert exit_code(srv, 5) == 0
    assert time.monotonic() - began < 3


def test_process_task_outliving_the_grace_leaves_no_process(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    # Its main process ignores SIGTERM: only the SIGKILL after the worker's kill_grace ends it.
    srv = serve(server_factory, 1, "--workers", "tests.process_workers")
    task_id = post(srv, "Burn", {"children": 1, "ignore_term": True})
    procs = descendants(srv, 2)
    signal_server(srv)
    assert exit_code(srv, 15) == 0
    assert wait_gone(procs, 5) == []
    assert not [p for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    restart(srv)
    failed = wait_sync(srv.api, task_id, "Failed")
    assert "server stopped" in task(srv, task_id)["Error"], failed


def test_open_event_stream_sees_the_drain_then_ends_cleanly(server_factory: ServerFactory) -> None:
    srv = serve(server_factory, 20)
    task_id = post(srv, "Hold", {"seconds": 1.5})
    wait_sync(srv.api, task_id, "Running")
    lines: list[str] = []
    with httpx.stream("GET", f"{srv.api}/events", params={"task": task_id}, timeout=15) as stream:
        assert stream.status_code == 200
        signal_server(srv)
        # Ends when the server stops; an abrupt close would raise RemoteProtocolError here.
        for line in stream.iter_lines():
            lines.append(line)
    assert exit_code(srv, 10) == 0
    assert any(line.startswith("event: task.status") for line in lines), lines
    assert any('"Completed"' in line for line in lines), lines


def test_chain_starts_no_new_step_while_draining(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    srv = serve(server_factory, 20)
    # Keeps the drain going after the chain's first step is done.
    blocker = post(srv, "Mark", {"path": str(tmp_path / "marks"), "seconds": 4})
    spec = {
        "steps": [
            {"name": "first", "worker": "Hold", "config": {"seconds": 1}},
            {"name": "second", "worker": "Echo", "config": {"value": 2}},
        ]
    }
    r = httpx.post(f"{srv.api}/chains", json=spec)
    assert r.status_code == 201, r.text
    chain_id = r.json()["ChainId"]
    wait_sync(srv.api, blocker, "Running")
    signal_server(srv)
    wait_draining(srv)
    refused = httpx.post(f"{srv.api}/chains", json=spec)
    assert refused.status_code == 503, refused.text
    assert "Retry-After" in refused.headers
    deadline = time.monotonic() + 10
    steps: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = httpx.get(f"{srv.api}/chains/{chain_id}").json()
        steps = {s["Name"]: s for s in body["Steps"]}
        if steps["first"]["Status"] == "Completed":
            break
        time.sleep(0.05)
    assert steps["first"]["Status"] == "Completed", steps
    time.sleep(0.5)  # time enough for the chain runner to have submitted the next step
    body = httpx.get(f"{srv.api}/chains/{chain_id}").json()
    assert {s["Name"]: s for s in body["Steps"]}["second"]["TaskId"] is None, body
    assert exit_code(srv, 15) == 0
    restart(srv)  # the next start picks the chain up again
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        body = httpx.get(f"{srv.api}/chains/{chain_id}").json()
        if body["Status"] == "Completed":
            break
        time.sleep(0.05)
    assert body["Status"] == "Completed", body


# A program that ignores SIGTERM: only SIGKILL ends it, after its worker's long kill_grace.
STUBBORN = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
STUBBORN += "while True: time.sleep(0.05)"


def test_second_sigterm_cuts_the_kill_grace_short(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    config = tmp_path / "tasky.toml"
    argv = json.dumps([sys.executable, "-c", STUBBORN])  # a JSON array is a valid TOML array
    config.write_text(f'[[workers]]\nname = "Stubborn"\nargv = {argv}\nkill_grace = 60\n')
    srv = serve(server_factory, 0.5, "--config", str(config))
    task_id = post(srv, "Stubborn", {})
    procs = descendants(srv, 1)
    signal_server(srv)
    time.sleep(2)  # the grace is over; the program ignored SIGTERM and has 60 s before SIGKILL
    assert srv.proc is not None and srv.proc.poll() is None
    assert [p for p in procs if p.is_running()], "the program stopped before its kill_grace"
    began = time.monotonic()
    signal_server(srv)
    assert exit_code(srv, 10) == 0
    assert time.monotonic() - began < 3
    assert wait_gone(procs, 5) == []
    restart(srv)
    assert "server stopped" in wait_sync(srv.api, task_id, "Failed")["Error"]
