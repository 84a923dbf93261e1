"""Logs you can debug with, against real servers: tracebacks of failed attempts (API and CLI), the
server log's one WARNING line per failed task, JSON lines, the access log, quiet libraries."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

from tasky.cli.main import app
from tasky.engine.tracebacks import MAX_TRACEBACK_BYTES
from tests.conftest import ServerProcess
from tests.helpers import wait_sync
from tests.log_workers import SECRET

MODES = ("BreakAsync", "BreakThread", "BreakProcess")
WORKERS = ("--workers", "tests.log_workers", "--workers", "tests.workers_for_tests")


def start(
    server_factory: Any, *args: str, env: dict[str, str] | None = None, data: Path | None = None
) -> ServerProcess:
    srv: ServerProcess = server_factory(*WORKERS, *args, env=env, data_dir=data)
    return srv


def post(srv: ServerProcess, worker: str, config: object, query: str = "") -> str:
    r = httpx.post(f"{srv.api}/workers/{worker}{query}", json=config)
    assert r.status_code == 201, r.text
    task_id: str = r.json()["TaskId"]
    return task_id


def failed(srv: ServerProcess, worker: str, config: object, query: str = "") -> dict[str, Any]:
    """Run a task to its failure; its full record."""
    task_id = post(srv, worker, config, query)
    wait_sync(srv.api, task_id, "Failed", timeout=30)
    task: dict[str, Any] = httpx.get(f"{srv.api}/tasks/{task_id}").json()
    return task


def log_lines_with(srv: ServerProcess, text: str, count: int, timeout: float = 10) -> list[str]:
    """The server log's lines holding ``text``, once there are ``count`` of them."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [ln for ln in srv.read_log().splitlines() if text in ln]
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_failed_attempts_carry_their_traceback_in_every_python_mode(server_factory: Any) -> None:
    srv = start(server_factory)
    for worker in MODES:
        task = failed(srv, worker, {"message": f"{worker} broke"})
        [attempt] = task["Attempts"]
        tb = attempt["Traceback"]
        assert attempt["Error"] == f"ValueError: {worker} broke"
        assert tb.startswith("Traceback (most recent call last):"), tb
        # The worker's own frames, down to where it raised, and the exception last.
        for frame in ("in perform", "in fail", "in innermost_failure"):
            assert frame in tb, (worker, tb)
        assert tb.endswith(f"ValueError: {worker} broke\n"), tb
        assert SECRET not in tb  # frames' locals are never formatted


def test_tracebacks_are_capped_keeping_their_end(server_factory: Any) -> None:
    srv = start(server_factory)
    for worker in MODES:
        # 400 chained causes make a traceback of well over 16 KiB.
        task = failed(srv, worker, {"links": 400, "message": "the last straw"})
        tb = task["Attempts"][-1]["Traceback"]
        assert len(tb.encode()) <= MAX_TRACEBACK_BYTES
        assert tb.startswith("[... ") and " bytes cut ...]\n" in tb, tb[:200]
        assert "link 0 of a long chain" not in tb  # the start went
        assert "link 399 of a long chain" in tb  # the end stayed
        assert tb.endswith("ValueError: the last straw\n")


def test_one_warning_line_per_failed_task_and_none_for_the_rest(server_factory: Any) -> None:
    srv = start(server_factory)
    fails = [failed(srv, worker, {})["TaskId"] for worker in MODES]
    # Two attempts, one failed task: the retry is an INFO line, not a second WARNING.
    retried = failed(srv, "BreakAsync", {}, "?retries=1")
    assert [a["Attempt"] for a in retried["Attempts"]] == [1, 2]
    fails.append(retried["TaskId"])
    done = post(srv, "Echo", {"value": "fine"})
    wait_sync(srv.api, done, "Completed")
    held = post(srv, "Hold", {"seconds": 60})
    wait_sync(srv.api, held, "Running")
    assert httpx.post(f"{srv.api}/tasks/{held}/cancel").status_code in (200, 202)
    wait_sync(srv.api, held, "Canceled")

    # (Other WARNING lines, such as the start-up's about running without a token, are not these.)
    warnings = log_lines_with(srv, " WARNING tasky.engine ", len(fails))
    assert len(warnings) == len(fails), warnings
    for task_id, line in zip(fails, warnings, strict=True):
        assert task_id in line and "tasky.engine" in line and "failed: ValueError" in line
    assert [w for w in warnings if "(worker BreakProcess)" in w]
    [retry] = log_lines_with(srv, f"task {retried['TaskId']} (worker BreakAsync) attempt 1", 1)
    assert " INFO " in retry and "retrying" in retry
    log = srv.read_log()
    assert done not in log and held not in log


def test_errors_cannot_forge_log_lines_or_reach_a_terminal(server_factory: Any) -> None:
    srv = start(server_factory)
    message = "bad \x1b[31mred\x1b]52;c;Zm9v\x07\nWARNING forged line"
    task = failed(srv, "BreakProcess", {"message": message})
    [line] = log_lines_with(srv, task["TaskId"], 1)
    assert "\\x1b[31mred" in line and "\\nWARNING forged line" in line
    log = srv.read_log()
    assert "\x1b" not in log and "\x07" not in log
    assert not [ln for ln in log.splitlines() if ln.startswith("WARNING forged")]

    # tasky status and tasky result show the traceback, with control characters written out.
    runner = CliRunner()
    for command, code in (("status", 0), ("result", 1)):
        shown = runner.invoke(app, [command, task["TaskId"], "--url", srv.url])
        assert shown.exit_code == code, shown.output
        out = shown.stdout
        assert "Traceback of the failed attempt:" in out
        assert "in innermost_failure" in out
        assert "ValueError: bad \\x1b[31mred\\x1b]52;c;Zm9v\\x07" in out
        assert "\x1b" not in out and "\x07" not in out


def test_json_lines_carry_task_and_worker_fields(server_factory: Any) -> None:
    srv = start(server_factory, "--access-log", env={"TASKY_LOG_FORMAT": "json"})
    task = failed(srv, "BreakThread", {"message": "json\nbroke"})
    assert httpx.get(f"{srv.api}/workers").status_code == 200
    log_lines_with(srv, '"/tasky/v1/workers"', 1)
    entries = [json.loads(line) for line in srv.read_log().splitlines() if line.strip()]
    keys = {"time", "level", "logger", "message", "node"}
    assert entries and all(keys <= set(e) for e in entries)
    assert any(e["message"].startswith("Tasky serving on http://127.0.0.1:") for e in entries)
    [failure] = [e for e in entries if e["level"] == "WARNING" and "task_id" in e]
    assert failure["task_id"] == task["TaskId"] and failure["worker"] == "BreakThread"
    assert failure["logger"] == "tasky.engine"
    assert failure["message"].endswith("failed: ValueError: json\nbroke")
    # The last one: the start-up's readiness probes asked for the workers too.
    access = [e for e in entries if e.get("path") == "/tasky/v1/workers"][-1]
    assert access["logger"] == "tasky.access" and access["level"] == "INFO"
    assert (access["method"], access["status"]) == ("GET", 200)
    assert access["client"].startswith("127.0.0.1:") and access["duration_ms"] >= 0


def test_access_log_is_off_by_default_and_on_when_asked(
    server_factory: Any, tmp_path: Path
) -> None:
    quiet = start(server_factory)
    on = start(server_factory, "--access-log", data=tmp_path / "other")
    for srv in (quiet, on):
        assert httpx.get(f"{srv.api}/workers").status_code == 200
        assert httpx.get(f"{srv.api}/tasks/{'0' * 32}").status_code == 404
    log_lines_with(on, f"/tasks/{'0' * 32}", 1)
    # The last two: the start-up's readiness probes came before.
    ok, missing = log_lines_with(on, "tasky.access", 2)[-2:]
    assert ' "GET /tasky/v1/workers" 200 ' in ok and ok.endswith(" ms")
    assert f' "GET /tasky/v1/tasks/{"0" * 32}" 404 ' in missing
    time.sleep(0.2)  # a line would have been written by now
    assert "tasky.access" not in quiet.read_log() and "/tasky/v1/workers" not in quiet.read_log()


def test_library_info_lines_stay_out_at_the_default_level(server_factory: Any) -> None:
    srv: ServerProcess = server_factory(
        "--workers", "tasky.workers.examples", "--outbound-allow", "127.0.0.1"
    )
    task_id = post(srv, "HTTPCheck", {"url": f"{srv.api}/workers"})
    body = wait_sync(srv.api, task_id, "Completed", "Failed", timeout=30)
    assert body["Status"] == "Completed", body
    time.sleep(0.2)
    log = srv.read_log()
    assert "Tasky serving on" in log  # Tasky's own INFO lines are there...
    assert "HTTP Request" not in log and "httpx" not in log  # ...httpx's are not


def test_a_task_failed_by_a_crash_gets_its_warning_line_too(
    server_factory: Any, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    srv = start(server_factory, data=data)
    fragile = post(srv, "NoPause", {"seconds": 60})  # not idempotent: a crash fails it
    wait_sync(srv.api, fragile, "Running")
    srv.kill()
    again = start(server_factory, data=data)
    wait_sync(again.api, fragile, "Failed")
    # (The restarted node also warns that it takes its name over from the killed process.)
    [line] = log_lines_with(again, f" WARNING tasky.engine task {fragile} ", 1)
    assert f"task {fragile} (worker NoPause) failed: the server stopped" in line
