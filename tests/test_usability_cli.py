"""The command line as a newcomer types it (issue 15): options anywhere, --version, a URL
without its scheme, one exit code per kind of mistake, clean output around a live bar."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from rich.progress import Progress

from tasky import __version__
from tasky.cli.live import RunTimeColumn
from tasky.cli.render import seconds
from tasky.cli.session import EXIT_USAGE, with_scheme
from tests.client_server import shared_server
from tests.conftest import ServerProcess, free_port
from tests.test_cli_client import as_json, submitted, tasky

__all__ = ["shared_server"]  # the fixture, imported so pytest finds it here

UNKNOWN_ID = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def url(shared_server: ServerProcess) -> str:
    return shared_server.url


def test_client_options_before_the_command(url: str) -> None:
    result = tasky("--url", url, "--json", "workers")
    assert result.exit_code == 0, result.output
    assert "Sleeper" in {w["name"] for w in as_json(result)}
    task_id = submitted(url, "Echo", "value=1")
    result = tasky("--json", "--url", url, "wait", task_id)
    assert result.exit_code == 0 and as_json(result)["Output"] == {"value": 1}


def test_an_option_after_the_command_wins_over_one_before(url: str) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    result = tasky("--url", nowhere, "workers", "--url", url, "--json")
    assert result.exit_code == 0, result.output
    # And one given before the command wins over the environment.
    result = tasky("--url", url, "workers", "--json", env={"TASKY_URL": nowhere})
    assert result.exit_code == 0, result.output


def test_client_options_before_a_nested_command(url: str) -> None:
    result = tasky("--url", url, "--json", "schedule", "list")
    assert result.exit_code == 0, result.output
    assert as_json(result) == {"Schedules": []}


def test_version() -> None:
    result = tasky("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"tasky {__version__}"


@pytest.mark.parametrize(
    ("given", "meant"),
    [
        ("127.0.0.1:8888", "http://127.0.0.1:8888"),
        (" localhost:8888 ", "http://localhost:8888"),
        ("https://tasky.example:443", "https://tasky.example:443"),
        (None, None),
    ],
)
def test_a_url_without_scheme_means_http(given: str | None, meant: str | None) -> None:
    assert with_scheme(given) == meant


def test_a_host_and_port_reach_the_server(url: str) -> None:
    bare = url.removeprefix("http://")
    result = tasky("workers", "--url", bare, "--json")
    assert result.exit_code == 0, result.output
    result = tasky("workers", "--json", env={"TASKY_URL": bare})
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    "args",
    [
        ("tasks", "--worker", "nope"),
        ("info", "nope"),
        ("stats", "nope"),
        ("submit", "nope"),
    ],
)
def test_an_unknown_worker_exits_2_everywhere(url: str, args: tuple[str, ...]) -> None:
    result = tasky(*args, "--url", url)
    assert result.exit_code == EXIT_USAGE, result.output
    assert "unknown worker 'nope'" in result.stderr and "Sleeper" in result.stderr


def test_tasks_of_a_worker_by_any_case(url: str) -> None:
    submitted(url, "Echo", "value=2")
    result = tasky("tasks", "--worker", "echo", "--url", url, "--json")
    assert result.exit_code == 0, result.output
    assert {t["Worker"] for t in as_json(result)["Tasks"]} == {"Echo"}


def test_wait_for_an_unknown_id_prints_only_the_error(url: str) -> None:
    result = tasky("wait", UNKNOWN_ID, "--url", url)
    assert result.exit_code == 4
    assert result.stdout == ""
    assert result.stderr.startswith("error: no task with id")


def test_the_wait_bar_ends_with_the_task_run_time(url: str) -> None:
    result = tasky("submit", "Hold", "seconds=1.3", "--wait", "--url", url)
    assert result.exit_code == 0, result.output
    task_id = result.stderr.split()[1]
    task: dict[str, Any] = httpx.get(f"{url}/tasky/v1/tasks/{task_id}").json()
    final_bar = next(line for line in result.stdout.splitlines() if "Completed" in line)
    assert seconds(task["DurationSeconds"]) in final_bar, (final_bar, task["DurationSeconds"])


def test_the_run_time_column_is_not_cut_to_whole_seconds() -> None:
    progress = Progress(RunTimeColumn())
    bar = progress.add_task("", run_time=2.96)
    rendered = RunTimeColumn().render(progress.tasks[bar])
    assert rendered.plain == "3.0s"
    live = progress.add_task("", run_time=None, start=False)
    assert RunTimeColumn().render(progress.tasks[live]).plain == "0ms"


def test_serve_refuses_client_options_before_it(tmp_path: Any) -> None:
    result = tasky("--token", "s3cret", "serve", "--data", str(tmp_path / "data"))
    assert result.exit_code == 2
    assert "tasky serve takes its own options" in result.stderr
    assert not (tmp_path / "data").exists()


def test_result_of_a_canceled_task_prints_no_empty_output(url: str) -> None:
    task_id = submitted(url, "Sleeper", "seconds=60")
    assert tasky("cancel", task_id, "--url", url).exit_code == 0
    result = tasky("result", task_id, "--url", url)
    assert result.exit_code == 3
    assert "{}" not in result.stdout and "Canceled" in result.stdout
    machine = tasky("result", task_id, "--url", url, "--json")
    assert json.loads(machine.stdout)["Output"] == {}
