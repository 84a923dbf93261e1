"""The example of docs/chains.md, taken from the page itself and run: copy a file, checksum the
copy, and on failure run a notification step (then restart once the cause is fixed)."""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import httpx

from tasky.settings import Settings
from tasky.workers.registry import WorkerRegistry
from tests.test_chains_api import act, start_chain, steps_of, wait_chain
from tests.test_chains_durable import running

DOC = Path(__file__).resolve().parent.parent / "docs" / "chains.md"
API = "/tasky/v1"


def _block(marker: str, lang: str) -> str:
    found = re.search(
        rf"<!-- example: {re.escape(marker)} -->\s*```{lang}\n(.*?)```", DOC.read_text(), re.S
    )
    assert found is not None, f"docs/chains.md has no {lang} block marked {marker}"
    return found.group(1)


def backup_definition() -> dict[str, Any]:
    definition: dict[str, Any] = json.loads(_block("backup", "json"))
    return definition


def test_the_toml_example_is_the_same_chain() -> None:
    toml = tomllib.loads(_block("backup-toml", "toml"))
    assert toml["chains"]["backup"] == backup_definition()


async def test_backup_example(client: httpx.AsyncClient, settings: Settings) -> None:
    root = settings.roots[0]
    (root / "report.csv").write_text("day,sales\nmon,3\ntue,5\n")
    chain_id = await start_chain(client, backup_definition())
    body = await wait_chain(client, chain_id, "Completed", "Failed")
    assert body["Status"] == "Completed", body
    copy = root / "report.backup.csv"
    assert copy.read_text() == "day,sales\nmon,3\ntue,5\n"
    assert body["Result"] == {
        "file": str(copy),
        "sha256": hashlib.sha256(copy.read_bytes()).hexdigest(),
    }
    steps = steps_of(body)
    assert steps["notify"]["Status"] == "Skipped"


async def test_backup_example_failure_notifies_then_restarts(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    definition = backup_definition()
    definition["parameters"] = {"source": "late.csv", "copy": "late.backup.csv"}
    chain_id = await start_chain(client, definition)
    body = await wait_chain(client, chain_id, "Completed", "Failed")
    assert body["Status"] == "Failed"
    steps = steps_of(body)
    assert steps["copy"]["Status"] == "Failed"
    assert steps["checksum"]["Status"] == "Skipped"
    assert steps["notify"]["Status"] == "Completed"
    assert body["Error"] == f"step 'copy' failed: {steps['copy']['Error']}"
    assert "late.csv" in body["Error"]
    logs = (await client.get(f"{API}/tasks/{steps['notify']['TaskId']}/logs")).json()
    assert [line["Line"] for line in logs["Lines"]] == [f"backup failed: {body['Error']}"]

    # The file shows up; restarting runs what did not complete, not the notification.
    (settings.roots[0] / "late.csv").write_text("x\n")
    assert (await act(client, chain_id, "restart")).status_code == 200
    body = await wait_chain(client, chain_id, "Completed", "Failed")
    assert body["Status"] == "Completed", body
    steps = steps_of(body)
    assert steps["copy"]["Attempt"] == 2
    assert steps["notify"]["Status"] == "Skipped"
    assert len(steps["notify"]["PreviousTaskIds"]) == 1
    assert body["Result"]["sha256"] == hashlib.sha256(b"x\n").hexdigest()


async def test_backup_example_from_the_config_file(
    settings: Settings, registry: WorkerRegistry, tmp_path: Path
) -> None:
    path = tmp_path / "tasky.toml"
    path.write_text(_block("backup-toml", "toml"))
    settings.config_files = [path]
    (settings.roots[0] / "sales.csv").write_text("1\n")
    async with running(settings, registry) as client:
        r = await client.post(
            f"{API}/chain-definitions/backup/start",
            json={"parameters": {"source": "sales.csv", "copy": "sales.bak"}},
        )
        assert r.status_code == 201, r.text
        body = await wait_chain(client, r.json()["ChainId"], "Completed", "Failed")
        assert body["Status"] == "Completed", body
        assert body["Definition"] == "backup"
        assert body["Result"]["file"] == str(settings.roots[0] / "sales.bak")
