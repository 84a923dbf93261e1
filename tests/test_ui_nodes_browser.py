"""The page's Nodes view in a real browser (Debian's chromium, see test_ui_browser)."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from tests.conftest import ServerFactory
from tests.helpers import wait_sync
from tests.test_ui_browser import browser, open_page, page, submit

__all__ = ["browser", "page"]  # the fixtures, imported so pytest finds them here


def test_the_nodes_view_lists_the_node_with_its_labels_and_running_tasks(
    page: Page, server_factory: ServerFactory
) -> None:
    server = server_factory(
        "--workers",
        "tasky.workers.examples",
        "--workers",
        "tests.workers_for_tests",
        "--node",
        "web-1",
        "--label",
        "gpu",
        "--label",
        "eu",
    )
    open_page(page, server, "#/tasks")
    page.get_by_role("link", name="Nodes").click()
    expect(page.locator(".tabs a[data-tab='nodes']")).to_have_attribute("aria-current", "page")
    row = page.locator("#node-table tr[data-node='web-1']")
    expect(row).to_have_attribute("data-alive", "true")
    expect(row.locator(".badge")).to_have_text("alive")
    expect(row.locator(".node-labels")).to_have_text("gpu, eu")
    expect(row.locator(".node-running")).to_have_text("0")
    expect(row.locator(".node-workers")).to_contain_text("Echo")
    held = submit(server, "Hold", {"seconds": 60})
    wait_sync(server.api, held, "Running")
    # The list is re-read every few seconds: the held task shows without a reload.
    expect(row.locator(".node-running")).to_have_text("1")
    assert httpx.post(f"{server.api}/tasks/{held}/cancel").status_code in (200, 202)
