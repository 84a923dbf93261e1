"""The Schedules tab of the web page in a real browser (Debian's chromium, see test_ui_browser)."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect

from tests.conftest import ServerProcess
from tests.test_ui_browser import browser, open_page, page

__all__ = ["browser", "page"]  # the fixtures, imported so pytest finds them here


def test_add_watch_pause_run_and_delete_a_schedule(page: Page, server: ServerProcess) -> None:
    page.on("dialog", lambda dialog: dialog.accept())  # the delete confirmation
    open_page(page, server, "#/schedules")
    form = page.locator("#add-schedule")
    form.locator("#schedule-name").fill("ui-tick")
    form.locator("#schedule-worker").select_option("Sleeper")
    form.locator("#schedule-config").fill('{"seconds": 0}')
    # A bad cron expression: the server's 422 is shown next to the field it names.
    form.locator("#schedule-when").fill("0 25 * * *")
    form.get_by_role("button", name="Add schedule").click()
    expect(form.locator(".field[data-field='cron'] .field-error")).to_contain_text("hour")
    form.locator("#schedule-kind").select_option("interval")
    form.locator("#schedule-when").fill("1")
    form.get_by_role("button", name="Add schedule").click()

    row = page.locator("tr[data-schedule='ui-tick']")
    expect(row).to_contain_text("every 1s")
    # It fires by itself, and the list (refreshed without a reload) links its last task.
    link = row.locator("a.last-run")
    expect(link).to_have_attribute("href", re.compile(r"#/tasks/[0-9a-f]{32}$"))

    row.locator("button[data-action='pause']").click()
    expect(row).to_have_attribute("data-paused", "true")
    expect(row.locator(".next-run")).to_have_text("paused")
    before = httpx.get(f"{server.api}/schedules/ui-tick").json()["LastTaskId"]
    row.locator("button[data-action='run']").click()
    expect(row.locator("a.last-run")).not_to_have_attribute("href", f"#/tasks/{before}")
    row.locator("button[data-action='resume']").click()
    expect(row).to_have_attribute("data-paused", "false")
    row.locator("button[data-action='delete']").click()
    expect(row).to_have_count(0)
    assert httpx.get(f"{server.api}/schedules").json() == {"Schedules": []}
