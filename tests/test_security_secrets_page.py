"""The web page and secrets, in a real browser: typed into a password input, never shown back.

The browser fixtures (Debian's chromium through Playwright) are those of tests/test_ui_browser.py.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.conftest import ServerProcess
from tests.test_ui_browser import browser, open_page, page

__all__ = ["browser", "page"]  # the fixtures, imported so pytest finds them here
MASK = "**********"


@pytest.fixture
def server(server_factory: Any) -> ServerProcess:
    srv: ServerProcess = server_factory("--workers", "tests.secret_workers")
    return srv


def _output(server: ServerProcess, task_id: str) -> Any:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        r = httpx.get(f"{server.api}/tasks/{task_id}/result")
        if r.status_code == 200:
            return r.json()["Output"]
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} did not finish")


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_a_secret_is_typed_into_a_password_input_and_never_shown(
    page: Page, server: ServerProcess
) -> None:
    password = "pw-" + secrets.token_hex(12)
    open_page(page, server, "#/workers/Vault")
    field = page.locator("#field-password")
    expect(field).to_have_attribute("type", "password")
    field.fill(password)
    page.locator("#submit-task").click()
    page.wait_for_url(re.compile(r"#/tasks/[0-9a-f]{32}$"))
    task_id = page.url.rsplit("/", 1)[1]
    expect(page.locator("#task-detail .detail-head .badge")).to_have_text("Completed")
    expect(page.locator("#task-config pre")).to_contain_text(MASK)
    assert _output(server, task_id)["sha256"] == _sha(password)
    assert password not in page.content()


def test_editing_a_queued_task_keeps_its_secret(page: Page, server: ServerProcess) -> None:
    password = "pw-" + secrets.token_hex(12)
    holder = httpx.post(f"{server.api}/workers/Vault", json={"password": "x", "hold": 30})
    waiting = httpx.post(f"{server.api}/workers/Vault", json={"password": password}).json()
    task_id = waiting["TaskId"]
    open_page(page, server, f"#/tasks/{task_id}")
    expect(page.locator("#task-detail .detail-head .badge")).to_have_text("Queued")
    page.locator("#edit-config").click()
    expect(page.locator("#field-edit-password")).to_have_attribute("type", "password")
    page.locator("#field-edit-user").fill("second")
    page.get_by_role("button", name="Save config").click()
    expect(page.locator("#task-config pre")).to_contain_text('"user": "second"')
    assert password not in page.content()
    httpx.post(f"{server.api}/tasks/{holder.json()['TaskId']}/cancel")
    assert _output(server, task_id) == {"user": "second", "sha256": _sha(password)}
