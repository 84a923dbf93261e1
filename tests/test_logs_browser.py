"""The page's detail view shows a failed attempt's traceback: folded, as text, never as HTML."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page, expect

from tests.conftest import ServerProcess
from tests.helpers import wait_sync
from tests.test_ui_browser import XSS, browser, page, submit  # noqa: F401 (fixtures)


def test_detail_view_shows_the_traceback_folded_and_as_text(
    page: Page,  # noqa: F811
    server_factory: Any,
) -> None:
    srv: ServerProcess = server_factory("--workers", "tests.log_workers")
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    task_id = submit(srv, "BreakThread", {"message": XSS})
    wait_sync(srv.api, task_id, "Failed", timeout=30)
    page.goto(f"{srv.url}/tasky/ui#/tasks/{task_id}")
    expect(page.locator("#task-error")).to_contain_text(XSS)

    folded = page.locator("#task-traceback")
    expect(folded).not_to_have_attribute("open", "")
    text = folded.locator("pre")
    expect(text).to_be_hidden()  # folded until asked for
    folded.locator("summary").click()
    expect(text).to_be_visible()
    expect(text).to_contain_text("in innermost_failure")
    expect(text).to_contain_text(f"ValueError: {XSS}")
    # The attempts table has the same traceback, folded, per attempt.
    expect(page.locator("#task-detail table.mini details.traceback")).to_have_count(1)

    page.wait_for_timeout(300)  # an onerror handler would have fired by now
    assert page.locator("img").count() == 0
    assert dialogs == []
