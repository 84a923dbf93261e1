"""The client commands of ``tasky`` against a real server (typer's CliRunner, and subprocesses)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from tasky.cli.main import app
from tests.client_server import WORKER_ARGS, shared_server
from tests.conftest import ROOT, ServerFactory, ServerProcess, free_port

__all__ = ["shared_server"]  # the fixture, imported so pytest finds it here


@pytest.fixture
def url(shared_server: ServerProcess) -> str:
    return shared_server.url


def tasky(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> Result:
    # Wide enough that table cells are not cut; no colours when not a terminal.
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "160", **(env or {})}, input=stdin)


def as_json(result: Result) -> Any:
    assert result.stdout, result.output
    return json.loads(result.stdout)


def submitted(url: str, *args: str) -> str:
    result = tasky("submit", *args, "--url", url, "--json")
    assert result.exit_code == 0, result.output
    task_id: str = as_json(result)["TaskId"]
    return task_id


def test_workers_table_and_json(url: str) -> None:
    result = tasky("workers", "--url", url)
    assert result.exit_code == 0, result.output
    for name in ("CopyFile", "Sleeper", "Echo", "cancel, pause, resume"):
        assert name in result.stdout
    listed = as_json(tasky("workers", "--url", url, "--json"))
    assert {"Sleeper", "Echo"} <= {w["name"] for w in listed}


def test_url_from_the_environment(url: str) -> None:
    result = tasky("workers", "--json", env={"TASKY_URL": url})
    assert result.exit_code == 0 and "Sleeper" in result.stdout


def test_info_shows_the_schema(url: str) -> None:
    result = tasky("info", "sleeper", "--url", url)
    assert result.exit_code == 0, result.output
    for text in ("Sleeper", "seconds", "number", ">= 0", "How long to sleep.", "tasky submit"):
        assert text in result.stdout
    body = as_json(tasky("info", "CopyFile", "--url", url, "--json"))
    assert body["config_objects"]["required"] == ["source", "destination"]


def test_unknown_worker_lists_the_workers(url: str) -> None:
    result = tasky("submit", "Sleepr", "seconds=1", "--url", url)
    assert result.exit_code == 2
    assert "unknown worker 'Sleepr'" in result.stderr
    assert "Did you mean Sleeper?" in result.stderr
    assert "CopyFile" in result.stderr and "Echo" in result.stderr
    result = tasky("info", "nope", "--url", url, "--json")
    assert result.exit_code == 2
    error = json.loads(result.stderr)
    assert "Sleeper" in error["Workers"]


def test_submit_wait_json_types_values_by_the_schema(url: str) -> None:
    result = tasky("submit", "Echo", "value=42", "--wait", "--url", url, "--json")
    assert result.exit_code == 0, result.output
    body = as_json(result)
    assert body["Status"] == "Completed"
    assert body["Output"] == {"value": 42}  # Echo takes any JSON: 42 is a number
    result = tasky("submit", "Echo", "value=forty", "--wait", "--url", url, "--json")
    assert as_json(result)["Output"] == {"string_output": "forty"}


def test_submit_follow_shows_logs_progress_and_result(url: str) -> None:
    result = tasky("submit", "Sleeper", "seconds=1", "--follow", "--url", url)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "slept 1 of 1 seconds" in out
    assert "Completed" in out and "100%" in out
    assert '"slept_seconds": 1.0' in out


def test_follow_json_is_one_object_per_line(url: str) -> None:
    result = tasky("submit", "Sleeper", "seconds=1", "--follow", "--json", "--url", url)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[0]["Line"] == "slept 1 of 1 seconds" and lines[0]["Seq"] == 1
    assert lines[-1]["Status"] == "Completed" and lines[-1]["Output"] == {"slept_seconds": 1.0}
    assert len(lines) == 2


def test_wait_exit_codes(url: str) -> None:
    failed = tasky("submit", "Flaky", "message=broken on purpose", "--wait", "--url", url)
    assert failed.exit_code == 1
    assert "broken on purpose" in failed.stdout
    task_id = submitted(url, "Sleeper", "seconds=60")
    canceled = tasky("cancel", task_id, "--url", url)
    assert canceled.exit_code == 0 and "Canceled" in canceled.stdout
    assert tasky("wait", task_id, "--url", url).exit_code == 3
    assert tasky("result", task_id, "--url", url).exit_code == 3
    ok = submitted(url, "Echo", "value=1")
    assert tasky("wait", ok, "--url", url, "--json").exit_code == 0
    result = tasky("result", ok, "--url", url, "--json")
    assert result.exit_code == 0 and as_json(result)["Output"] == {"value": 1}


def test_wait_timeout(url: str) -> None:
    task_id = submitted(url, "Sleeper", "seconds=60")
    result = tasky("wait", task_id, "--timeout", "0.3", "--url", url)
    assert result.exit_code == 6
    assert "did not finish within 0.3 seconds" in result.stderr
    assert tasky("cancel", task_id, "--url", url).exit_code == 0


def test_bad_config_errors(url: str) -> None:
    result = tasky("submit", "Sleeper", "secnds=3", "--url", url)
    assert result.exit_code == 2
    assert "unknown key 'secnds' for Sleeper; did you mean 'seconds'?" in result.stderr
    result = tasky("submit", "Sleeper", "seconds=soon", "--url", url)
    assert result.exit_code == 2
    assert "seconds: expected a number, not 'soon'" in result.stderr
    result = tasky("submit", "CopyFile", "source=", "--url", url)
    assert result.exit_code == 2
    assert "source: String should have at least 1 character" in result.stderr
    assert "destination: Field required" in result.stderr
    result = tasky("submit", "Sleeper", "seconds=-1", "--url", url, "--json")
    assert result.exit_code == 2
    error = json.loads(result.stderr)
    assert [f["field"] for f in error["Fields"]] == ["seconds"]
    result = tasky("submit", "Sleeper", "seconds", "--url", url)
    assert result.exit_code == 2 and "expected key=value" in result.stderr


def test_config_file_and_stdin(url: str, tmp_path: Path) -> None:
    config = tmp_path / "echo.json"
    config.write_text('{"value": {"from": "file"}}')
    result = tasky("submit", "Echo", "-c", str(config), "--wait", "--url", url, "--json")
    assert as_json(result)["Output"] == {"from": "file"}
    toml = tmp_path / "sleep.toml"
    toml.write_text("seconds = 60\n")
    # key=value wins over the file.
    result = tasky("submit", "Sleeper", "-c", str(toml), "seconds=0", "--wait", "--url", url)
    assert result.exit_code == 0, result.output
    result = tasky(
        "submit",
        "Echo",
        "--config-file",
        "-",
        "--wait",
        "--json",
        "--url",
        url,
        stdin='{"value": 7}',
    )
    assert as_json(result)["Output"] == {"value": 7}
    result = tasky("submit", "Echo", "-c", str(tmp_path / "missing.json"), "--url", url)
    assert result.exit_code == 2 and "cannot read config file" in result.stderr


def test_tasks_listing(url: str) -> None:
    ids = [submitted(url, "Echo", f"value={n}") for n in range(3)]
    for task_id in ids:
        assert tasky("wait", task_id, "--url", url).exit_code == 0
    page = as_json(tasky("tasks", "--worker", "Echo", "--limit", "2", "--url", url, "--json"))
    assert [t["TaskId"] for t in page["Tasks"]] == ids[::-1][:2]  # newest first
    assert page["NextCursor"] is not None
    rest = tasky(
        "tasks", "--worker", "Echo", "--cursor", page["NextCursor"], "--url", url, "--json"
    )
    assert ids[0] in [t["TaskId"] for t in as_json(rest)["Tasks"]]
    done = as_json(
        tasky("tasks", "--status", "completed", "--limit", "1000", "--url", url, "--json")
    )
    assert all(t["Status"] == "Completed" for t in done["Tasks"]) and done["Tasks"]
    table = tasky("tasks", "--worker", "Echo", "--url", url)
    assert table.exit_code == 0 and ids[-1] in table.stdout and "Completed" in table.stdout
    bad = tasky("tasks", "--status", "sleeping", "--url", url)
    assert bad.exit_code == 2 and "unknown status 'sleeping'" in bad.stderr


def test_status_result_and_logs(url: str) -> None:
    task_id = submitted(url, "Sleeper", "seconds=1")
    assert tasky("wait", task_id, "--url", url).exit_code == 0
    status = tasky("status", task_id, "--url", url)
    assert status.exit_code == 0
    for text in (task_id, "Sleeper", "Completed", "100%"):
        assert text in status.stdout
    assert as_json(tasky("status", task_id, "--url", url, "--json"))["Status"] == "Completed"
    result = tasky("result", task_id, "--url", url)
    assert '"slept_seconds": 1.0' in result.stdout
    logs = tasky("logs", task_id, "--url", url)
    assert logs.exit_code == 0 and "slept 1 of 1 seconds" in logs.stdout
    lines = [
        json.loads(ln) for ln in tasky("logs", task_id, "--url", url, "--json").stdout.splitlines()
    ]
    assert [ln["Line"] for ln in lines] == ["slept 1 of 1 seconds"]
    for command in ("status", "wait", "logs", "result", "cancel"):
        for bad in ("0" * 32, "not-an-id"):
            missing = tasky(command, bad, "--url", url)
            assert missing.exit_code == 4, (command, bad, missing.output)
            assert f"no task with id '{bad}'" in missing.stderr
            assert "━" not in missing.stdout  # no progress bar for a task that is not there


def test_logs_follow(url: str) -> None:
    task_id = submitted(url, "Sleeper", "seconds=2")
    result = tasky("logs", task_id, "-f", "--url", url)
    assert result.exit_code == 0
    assert result.stdout.count("slept") == 2


def test_pause_resume_run_and_conflicts(url: str) -> None:
    task_id = submitted(url, "Sleeper", "seconds=60")
    paused = tasky("pause", task_id, "--url", url, "--json")
    assert paused.exit_code == 0 and as_json(paused)["Status"] == "Paused"
    assert "Paused" in tasky("status", task_id, "--url", url).stdout
    resumed = tasky("resume", task_id, "--url", url)
    assert resumed.exit_code == 0
    assert "Running" in resumed.stdout or "Queued" in resumed.stdout
    assert tasky("cancel", task_id, "--url", url).exit_code == 0
    again = tasky("cancel", task_id, "--url", url)
    assert again.exit_code == 4 and "the task is Canceled: cannot cancel" in again.stderr
    rerun = tasky("run", task_id, "--url", url, "--json")
    assert rerun.exit_code == 0 and as_json(rerun)["Status"] in ("Queued", "Running")
    assert tasky("cancel", task_id, "--url", url).exit_code == 0
    no_pause = submitted(url, "NoPause", "seconds=60")
    refused = tasky("pause", no_pause, "--url", url)
    assert refused.exit_code == 4
    assert tasky("cancel", no_pause, "--url", url).exit_code == 0


def test_stats(url: str) -> None:
    assert tasky("wait", submitted(url, "Echo", "value=s"), "--url", url).exit_code == 0
    table = tasky("stats", "--url", url)
    assert table.exit_code == 0 and "Echo" in table.stdout and "Sleeper" in table.stdout
    every = as_json(tasky("stats", "--url", url, "--json"))
    assert {s["Worker"] for s in every} >= {"Echo", "Sleeper"}
    one = as_json(tasky("stats", "echo", "--url", url, "--json"))
    assert one["Worker"] == "Echo" and one["ByStatus"]["Completed"] >= 1
    assert "Failure rate" in tasky("stats", "Echo", "--url", url).stdout
    assert tasky("stats", "nope", "--url", url).exit_code == 2


def test_unreachable_server() -> None:
    where = f"http://127.0.0.1:{free_port()}"
    result = tasky("workers", "--url", where)
    assert result.exit_code == 5
    assert f"cannot reach the Tasky server at {where}/tasky/v1" in result.stderr
    assert "TASKY_URL" in result.stderr
    result = tasky("tasks", "--url", "ftp://localhost:8888")
    assert result.exit_code == 2 and "http://HOST:PORT" in result.stderr


def test_token(server_factory: ServerFactory) -> None:
    server: ServerProcess = server_factory("--token", "s3cret", *WORKER_ARGS)
    refused = tasky("workers", "--url", server.url)
    assert refused.exit_code == 4 and "--token or TASKY_TOKEN" in refused.stderr
    assert tasky("workers", "--url", server.url, "--token", "s3cret").exit_code == 0
    assert tasky("workers", "--url", server.url, env={"TASKY_TOKEN": "s3cret"}).exit_code == 0


def test_real_processes_exit_with_the_task(url: str) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tasky", *args, "--url", url],
            capture_output=True,
            text=True,
            timeout=120,
            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
            check=False,
        )

    ok = run("submit", "Echo", "value=true", "--wait", "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["Output"] == {"value": True}
    failed = run("submit", "Flaky", "--wait")
    assert failed.returncode == 1 and "boom" in failed.stdout
