"""``tasky submit NAME --from FILE.jsonl`` against a real server."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.client_server import shared_server
from tests.conftest import ServerProcess
from tests.test_cli_client import as_json, tasky

__all__ = ["shared_server"]  # the fixture, imported so pytest finds it here


@pytest.fixture
def url(shared_server: ServerProcess) -> str:
    return shared_server.url


def echo_total(url: str) -> int:
    total: int = httpx.get(f"{url}/tasky/v1/workers/Echo/statistics").json()["Total"]
    return total


def config_of(url: str, task_id: str) -> object:
    return httpx.get(f"{url}/tasky/v1/tasks/{task_id}").json()["Config"]


def test_one_task_per_line_ids_in_order(url: str, tmp_path: Path) -> None:
    source = tmp_path / "configs.jsonl"
    source.write_text('{"value": 1}\n\n{"value": "two"}\n{}\n')  # a blank line is skipped
    result = tasky("submit", "echo", "--from", str(source), "--url", url, "--chunk-size", "2")
    assert result.exit_code == 0, result.output
    ids = result.stdout.split()
    assert len(ids) == 3
    assert [config_of(url, i) for i in ids] == [{"value": 1}, {"value": "two"}, {"value": None}]
    assert "Created 3 tasks (Echo)" in result.stderr


def test_one_line_says_one_task(url: str) -> None:
    result = tasky("submit", "Echo", "--from", "-", "--url", url, stdin='{"value": 1}\n')
    assert result.exit_code == 0, result.output
    assert len(result.stdout.split()) == 1
    assert "Created 1 task (Echo)" in result.stderr


def test_stdin_json_and_query_options(url: str) -> None:
    lines = "\n".join(json.dumps({"value": n}) for n in range(3))
    result = tasky(
        "submit", "Echo", "--from", "-", "--timeout", "7", "--url", url, "--json", stdin=lines
    )
    assert result.exit_code == 0, result.output
    ids = as_json(result)["TaskIds"]
    assert [config_of(url, i) for i in ids] == [{"value": n} for n in range(3)]
    task = httpx.get(f"{url}/tasky/v1/tasks/{ids[0]}").json()
    assert task["Timeout"] == 7


def test_bad_lines_are_named_and_nothing_is_sent(url: str, tmp_path: Path) -> None:
    before = echo_total(url)
    source = tmp_path / "bad.jsonl"
    source.write_text('{"value": 1}\n{"value": \n[1, 2]\n{"value": 4}\n')
    result = tasky("submit", "Echo", "--from", str(source), "--url", url)
    assert result.exit_code == 2, result.output
    assert "2 bad line(s)" in result.stderr
    assert "line 2: not JSON" in result.stderr
    assert "line 3: not a JSON object" in result.stderr
    assert echo_total(url) == before


def test_configs_the_worker_refuses_are_named_by_line(url: str, tmp_path: Path) -> None:
    before = echo_total(url)
    source = tmp_path / "refused.jsonl"
    source.write_text('{"value": 1}\n\n{"value": 2, "bogus": 1}\n{"value": 3}\n')
    result = tasky("submit", "Echo", "--from", str(source), "--url", url)
    assert result.exit_code == 2, result.output
    assert "line 3: bogus: Extra inputs are not permitted" in result.stderr
    assert echo_total(url) == before


def test_a_chunk_refused_after_others_were_created(url: str, tmp_path: Path) -> None:
    source = tmp_path / "late.jsonl"
    source.write_text('{"value": 1}\n{"value": 2}\n{"wrong": 3}\n')
    result = tasky("submit", "Echo", "--from", str(source), "--url", url, "--chunk-size", "2")
    assert result.exit_code == 2, result.output
    created = result.stdout.split()
    assert [config_of(url, i) for i in created] == [{"value": 1}, {"value": 2}]
    assert "2 of 3 tasks were created" in result.stderr
    assert "line 3: wrong: Extra inputs are not permitted" in result.stderr


def test_from_excludes_a_single_tasks_options(url: str, tmp_path: Path) -> None:
    source = tmp_path / "one.jsonl"
    source.write_text("{}\n")
    result = tasky("submit", "Echo", "value=1", "--from", str(source), "--url", url)
    assert result.exit_code == 2 and "--from takes no key=value" in result.stderr
    result = tasky("submit", "Echo", "--from", str(tmp_path / "missing.jsonl"), "--url", url)
    assert result.exit_code == 2 and "cannot read" in result.stderr
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    result = tasky("submit", "Echo", "--from", str(empty), "--url", url)
    assert result.exit_code == 2 and "holds no config" in result.stderr
