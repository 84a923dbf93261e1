"""The page served by one node shows a task that runs on another node live: its status from the
shared event stream, its progress and log lines by re-reading a task it has not heard of for a
few seconds (two real nodes on one PostgreSQL; Debian's chromium, see test_ui_browser)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.conftest import ServerFactory
from tests.helpers import wait_sync
from tests.pg import emptied_shared_schema
from tests.test_ui_browser import browser, open_page, page

__all__ = ["browser", "page"]  # the fixtures, imported so pytest finds them here

pytestmark = [pytest.mark.postgres]


def test_a_task_running_on_another_node_shows_its_progress_and_logs(
    page: Page, server_factory: ServerFactory, tmp_path: Path
) -> None:
    url = emptied_shared_schema()
    for name in ("a", "b"):
        (tmp_path / name).mkdir()  # each node's data directory's parent holds its log
    common = ("--workers", "tasky.workers.examples", "--db", url)
    a = server_factory(*common, "--node", "node-a", data_dir=tmp_path / "a" / "data")
    b = server_factory(*common, "--node", "node-b", data_dir=tmp_path / "b" / "data")
    r = httpx.post(
        f"{a.api}/workers/Sleeper", json={"seconds": 30}, params={"node": "node-b"}, timeout=10
    )
    assert r.status_code == 201, r.text
    task_id = r.json()["TaskId"]
    wait_sync(b.api, task_id, "Running")
    open_page(page, a, f"#/tasks/{task_id}")
    # Sleeper reports progress and a log line every second, on node b only.
    expect(page.locator("#progress-text")).to_have_text(
        re.compile(r"^[1-9][0-9.]*% · \d+ of 30 s"), timeout=15_000
    )
    expect(page.locator("#task-logs")).to_contain_text("slept", timeout=15_000)
    first = page.locator("#progress-text").text_content()
    expect(page.locator("#progress-text")).not_to_have_text(first or "", timeout=15_000)
    assert httpx.post(f"{a.api}/tasks/{task_id}/cancel", timeout=10).status_code in (200, 202)
    wait_sync(a.api, task_id, "Canceled")
