"""The web page with role tokens, in a real browser: a viewer watches live and is refused
actions with a clear message; an operator acts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, Page, expect

from tests.conftest import ServerProcess
from tests.security_helpers import BOOTSTRAP, bearer, create_token, start_with_token_file
from tests.test_ui_browser import WAIT_MS, browser

__all__ = ["browser"]  # the fixture, imported so pytest finds it here


def _sign_in(page: Page, server: ServerProcess, token: str) -> None:
    page.goto(f"{server.url}/tasky/ui#/tasks")
    page.locator("#token-input").fill(token)
    page.locator("#token-form button[type='submit']").click()
    expect(page.locator("#token-dialog")).to_be_hidden()
    expect(page.locator("#live")).to_have_attribute("data-state", "live")


def _status(server: ServerProcess, task_id: str) -> str:
    answer = httpx.get(f"{server.api}/tasks/{task_id}/status", headers=bearer(BOOTSTRAP))
    status: str = answer.json()["Status"]
    return status


def test_viewer_watches_and_operator_acts(
    browser: Browser, server_factory: Any, tmp_path: Path
) -> None:
    server = start_with_token_file(server_factory, tmp_path)
    viewer = create_token(server.api, BOOTSTRAP, "viewer", "viewer")
    operator = create_token(server.api, BOOTSTRAP, "operator", "operator")
    for token, acts in ((viewer, False), (operator, True)):
        context = browser.new_context()
        context.set_default_timeout(WAIT_MS)
        page = context.new_page()
        try:
            _sign_in(page, server, token)
            held = httpx.post(
                f"{server.api}/workers/Hold", json={"seconds": 60}, headers=bearer(BOOTSTRAP)
            ).json()["TaskId"]
            row = page.locator(f"tr[data-task='{held}']")
            expect(row).to_have_attribute("data-status", "Running")  # live over the stream
            row.locator("button[data-action='cancel']").click()
            if acts:
                expect(row).to_have_attribute("data-status", "Canceled")
                assert _status(server, held) == "Canceled"
            else:
                expect(page.locator(".toast.error")).to_contain_text("viewer role")
                assert _status(server, held) == "Running"
                httpx.post(f"{server.api}/tasks/{held}/cancel", headers=bearer(BOOTSTRAP))
        finally:
            context.close()
