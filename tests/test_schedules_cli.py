"""``tasky schedule ...`` and the Python clients' schedule methods against a real server."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from tasky.cli.main import app
from tasky.client import AsyncClient, Client, ValidationFailed
from tasky.schedules.config import load_schedule_specs
from tasky.schedules.records import to_record
from tests.client_server import shared_server
from tests.conftest import ROOT, ServerProcess

__all__ = ["shared_server"]  # the fixture, imported so pytest finds it here


def tasky(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_schedule_commands_add_list_pause_resume_run_now_delete(
    shared_server: ServerProcess,
) -> None:
    url = ("--url", shared_server.url)
    added = as_json(
        tasky(
            "schedule", "add", "cli-daily", "--worker", "Sleeper", "--config", '{"seconds": 0}',
            "--cron", "30 2 * * *", "--timezone", "Europe/Paris", "--catch-up", "once",
            "--json", *url,
        )
    )  # fmt: skip
    assert added["Cron"] == "30 2 * * *" and added["CatchUp"] == "once"
    assert added["NextRun"] > time.time()
    table = tasky("schedule", "list", *url)
    assert table.exit_code == 0 and "cli-daily" in table.stdout
    assert "30 2 * * * (Europe/Paris)" in table.stdout
    paused = as_json(tasky("schedule", "pause", "cli-daily", "--json", *url))
    assert paused["Paused"] is True and paused["NextRun"] is None
    assert "paused" in tasky("schedule", "list", *url).stdout
    ran = as_json(tasky("schedule", "run-now", "cli-daily", "--json", *url))
    assert ran["LastTaskId"] and ran["Paused"] is True
    resumed = as_json(tasky("schedule", "resume", "cli-daily", "--json", *url))
    assert resumed["Paused"] is False and resumed["NextRun"] > time.time()
    gone = as_json(tasky("schedule", "delete", "cli-daily", "--json", *url))
    assert gone == {"Name": "cli-daily", "Deleted": True}
    listed = as_json(tasky("schedule", "list", "--json", *url))
    assert "cli-daily" not in [s["Name"] for s in listed["Schedules"]]


def test_schedule_add_refusals_exit_with_usage_codes(shared_server: ServerProcess) -> None:
    url = ("--url", shared_server.url)
    bad_cron = tasky("schedule", "add", "x", "--worker", "Sleeper", "--cron", "0 25 * * *", *url)
    assert bad_cron.exit_code == 2 and "hour" in bad_cron.output
    bad_json = tasky("schedule", "add", "x", "--worker", "Sleeper", "--config", "{", *url)
    assert bad_json.exit_code == 2 and "--config" in bad_json.output
    missing = tasky("schedule", "pause", "no-such-schedule", *url)
    assert missing.exit_code == 4


def test_sync_client_schedule_methods(shared_server: ServerProcess) -> None:
    with Client(shared_server.url) as client:
        made = client.create_schedule(
            {"name": "py-sync", "worker": "Sleeper", "interval": 3600, "paused": True}
        )
        assert made.interval == 3600 and made.every == "1h0m0s" and made.paused
        ran = client.run_schedule("py-sync")
        assert ran.last_task_id is not None
        assert client.get(ran.last_task_id).worker == "Sleeper"
        assert client.schedule("py-sync").last_task_id == ran.last_task_id
        assert "py-sync" in [s.name for s in client.schedules()]
        with pytest.raises(ValidationFailed) as refused:
            client.create_schedule({"name": "tz", "worker": "Sleeper", "cron": "@daily",
                                    "timezone": "Nowhere/Town"})  # fmt: skip
        assert [f.field for f in refused.value.fields] == ["timezone"]
        client.delete_schedule("py-sync")


async def test_async_client_schedule_methods(shared_server: ServerProcess) -> None:
    async with AsyncClient(shared_server.url) as client:
        made = await client.create_schedule(
            {"name": "py-async", "worker": "Sleeper", "cron": "@hourly"}
        )
        assert made.cron == "@hourly" and not made.paused
        assert (await client.pause_schedule("py-async")).paused
        assert not (await client.resume_schedule("py-async")).paused
        ran = await client.run_schedule("py-async")
        assert ran.last_task_id is not None
        await client.delete_schedule("py-async")
        assert "py-async" not in [s.name for s in await client.schedules()]


def test_the_docs_toml_example_loads(tmp_path: Path) -> None:
    docs = (ROOT / "docs" / "schedules.md").read_text()
    (block,) = re.findall(r"```toml\n(.*?)```", docs, re.S)
    path = tmp_path / "tasky.toml"
    path.write_text(block)
    specs = load_schedule_specs([path])
    assert [(s.name, s.cron, s.interval) for s, _ in specs] == [
        ("nightly-report", "30 2 * * *", None),
        ("heartbeat", None, 300),
    ]
    for spec, _ in specs:
        to_record(spec, time.time())  # the timing is valid too
