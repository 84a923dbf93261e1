"""The page in a real browser (Debian's chromium, see test_ui_browser): a Paused task's run time
stands still, and Queued tasks show their place in their worker's queue, kept live by the event
stream (no reload)."""

from __future__ import annotations

import httpx
from playwright.sync_api import Locator, Page, expect

from tests.conftest import ServerProcess
from tests.helpers import wait_sync
from tests.test_ui_browser import browser, open_page, page, submit

__all__ = ["browser", "page"]  # the fixtures, imported so pytest finds them here


def _act(server: ServerProcess, task_id: str, action: str) -> None:
    r = httpx.post(f"{server.api}/task/{task_id}/actions", json={"action": action})
    assert r.status_code in (200, 202), r.text


def test_a_paused_tasks_run_time_stands_still(page: Page, server: ServerProcess) -> None:
    task_id = submit(server, "Hold", {"seconds": 60})
    wait_sync(server.api, task_id, "Running")
    open_page(page, server, f"#/tasks/{task_id}")
    detail_time = page.locator("#task-detail .kv .duration")
    expect(detail_time).not_to_have_text("—")
    page.locator("#task-detail .detail-head button[data-action='pause']").click()
    expect(page.locator("#task-detail .detail-head .badge")).to_have_text("Paused")
    page.wait_for_timeout(600)  # the server's record (PausedAt) is in
    shown = detail_time.inner_text()
    page.wait_for_timeout(2500)  # the page ticks every second: a running clock would move
    assert detail_time.inner_text() == shown

    open_page(page, server, "#/tasks?worker=Hold")
    row_time = page.locator(f"tr[data-task='{task_id}'] td.c-duration")
    expect(row_time).to_have_text(shown)
    page.wait_for_timeout(2500)
    assert row_time.inner_text() == shown

    _act(server, task_id, "resume")  # the event stream tells the table; its clock moves on
    expect(page.locator(f"tr[data-task='{task_id}'] .badge")).to_have_text("Running")
    expect(row_time).not_to_have_text(shown)
    _act(server, task_id, "cancel")
    wait_sync(server.api, task_id, "Canceled")


def test_queued_tasks_show_their_place_in_the_queue(page: Page, server: ServerProcess) -> None:
    blocker = submit(server, "Hold", {"seconds": 60})  # Hold runs one task at a time
    wait_sync(server.api, blocker, "Running")
    queued = [submit(server, "Hold", {"seconds": 0}) for _ in range(3)]
    open_page(page, server, "#/tasks?worker=Hold")

    def place(task_id: str) -> Locator:
        return page.locator(f"tr[data-task='{task_id}'] td.c-status")

    for n, task_id in enumerate(queued, start=1):
        expect(place(task_id)).to_contain_text(f"#{n} in queue")
    expect(place(blocker)).not_to_contain_text("in queue")

    # Canceled elsewhere (the API), the others move up live, through the event stream.
    _act(server, queued[0], "cancel")
    expect(place(queued[0])).not_to_contain_text("in queue")
    expect(place(queued[1])).to_contain_text("#1 in queue")
    expect(place(queued[2])).to_contain_text("#2 in queue")

    # The task's own view says it too, and follows the queue when another task leaves it.
    open_page(page, server, f"#/tasks/{queued[2]}")
    own = page.locator("#task-detail #queue-place")
    expect(own).to_have_text("#2 in queue")
    _act(server, queued[1], "cancel")
    expect(own).to_have_text("#1 in queue")
    _act(server, blocker, "cancel")
    expect(page.locator("#task-detail .detail-head .badge")).to_have_text("Completed")
    expect(own).to_have_text("")
