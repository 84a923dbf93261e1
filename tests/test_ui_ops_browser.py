"""The page for operators, in a real browser (Debian's chromium, see test_ui_browser): views that
recover once the server is back, bulk actions with their summary, the chain column."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from tests.conftest import ServerProcess
from tests.helpers import wait_sync
from tests.test_ui_browser import browser, open_page, page, status_of, submit

__all__ = ["browser", "page"]  # the fixtures, imported so pytest finds them here

# The live stream's reconnect back-off reaches 15 s: a view waits for it to redraw.
RECONNECT_MS = 40_000


def test_a_view_that_failed_while_the_server_was_down_redraws_once_it_is_back(
    page: Page, server: ServerProcess
) -> None:
    open_page(page, server, "#/tasks")
    server.stop()
    expect(page.locator("#live")).to_have_attribute("data-state", "reconnecting")
    page.evaluate("location.hash = '#/workers/Echo'")
    failed = page.locator("#view-error")
    expect(failed).to_contain_text("cannot be reached")
    retry = page.get_by_role("button", name="Retry")
    retry.click()  # still down: the same answer, and the button is there again
    expect(failed).to_be_visible()
    expect(page.get_by_role("button", name="Retry")).to_be_enabled()
    server.start()
    # Nobody clicks: the view is drawn again when the live connection is back.
    expect(page.locator("#task-form[data-worker='Echo']")).to_be_visible(timeout=RECONNECT_MS)
    expect(failed).to_have_count(0)


def test_the_retry_button_draws_a_failed_view_again(page: Page, server: ServerProcess) -> None:
    task_id = submit(server, "Echo", {"value": 1})
    answered: list[int] = []

    def fail_once(route: Any) -> None:
        if answered:
            route.continue_()
            return
        answered.append(503)
        route.fulfill(status=503, json={"Error": "the store is busy"})

    open_page(page, server)
    page.route(re.compile(rf".*/tasky/v1/tasks/{task_id}$"), fail_once)
    page.evaluate(f"location.hash = '#/tasks/{task_id}'")
    expect(page.locator("#view-error .error-box")).to_have_text("the store is busy")
    expect(page.locator("#live")).to_have_attribute("data-state", "live")  # nothing to wait for
    page.get_by_role("button", name="Retry").click()
    expect(page.locator("#task-detail .detail-head .badge")).to_have_text("Completed")


def test_bulk_action_on_selected_rows_says_what_was_refused_and_why(
    page: Page, server: ServerProcess
) -> None:
    page.on("dialog", lambda dialog: dialog.accept())  # the confirmation
    running = submit(server, "Hold", {"seconds": 60})
    waiting = submit(server, "Hold", {"seconds": 60})  # Hold runs one at a time
    done = submit(server, "Echo", {"value": "x"})
    stubborn = submit(server, "NoPause", {"seconds": 60})
    wait_sync(server.api, done, "Completed")
    open_page(page, server, "#/tasks")
    rows = page.locator("#task-rows tr")
    expect(rows).to_have_count(4)
    expect(page.locator("#bulk-bar")).to_be_hidden()
    page.locator("#select-page").check()
    expect(page.locator("#bulk-count")).to_have_text("4 selected.")
    page.locator("#bulk-pause").click()

    report = page.locator("#bulk-summary")
    expect(report).to_contain_text("Pause: 2 of 4 tasks paused, 2 refused.")
    reasons = report.locator(".bulk-reasons li")
    expect(reasons).to_have_count(2)
    # Grouped by the server's reason, each with its tasks (in whatever order they answered).
    for reason, task_id in (
        ("the task is Completed: cannot pause (1 task)", done),
        ("worker NoPause does not support pause (1 task)", stubborn),
    ):
        expect(
            reasons.filter(has_text=reason).locator(f"a[href='#/tasks/{task_id}']")
        ).to_be_visible()
    assert [status_of(server, t) for t in (running, waiting, done, stubborn)] == [
        "Paused",
        "Paused",
        "Completed",
        "Running",
    ]
    expect(page.locator("#bulk-bar")).to_be_hidden()  # the selection is spent

    # Rows picked one by one: only those.
    for task_id in (running, stubborn):
        page.locator(f"tr[data-task='{task_id}'] input.select-task").check()
    page.locator("#bulk-cancel").click()
    expect(report).to_contain_text("Cancel: 2 of 2 tasks canceled.")
    expect(report.locator(".bulk-reasons")).to_have_count(0)
    assert status_of(server, running) == "Canceled"
    assert status_of(server, stubborn) == "Canceled"
    assert status_of(server, waiting) in ("Paused", "Queued", "Running")


def test_bulk_action_on_every_task_matching_the_filters(page: Page, server: ServerProcess) -> None:
    page.on("dialog", lambda dialog: dialog.accept())
    ids = [submit(server, "Echo", {"value": n}) for n in range(60)]
    other = submit(server, "Hold", {"seconds": 60})
    wait_sync(server.api, ids[-1], "Completed")
    open_page(page, server, "#/tasks?worker=Echo")
    expect(page.locator("#task-rows tr")).to_have_count(50)  # one page of the 60
    page.locator("#task-rows tr input.select-task").first.check()
    page.locator("#select-matching").click()
    expect(page.locator("#bulk-count")).to_have_text(
        "All 60 tasks matching the filters are selected."
    )
    expect(page.locator("#task-rows input.select-task:not(:checked)")).to_have_count(0)
    page.locator("#bulk-run").click()
    report = page.locator("#bulk-summary")
    expect(report).to_contain_text("Run again: 60 of 60 tasks started again.")
    for task_id in (ids[0], ids[-1]):  # the oldest one was not on the page
        attempt = httpx.get(f"{server.api}/tasks/{task_id}").json()["Attempt"]
        assert attempt == 2
    assert status_of(server, other) == "Running"  # not matched by the filter


def test_task_table_links_each_step_to_its_chain(page: Page, server: ServerProcess) -> None:
    chain = {"name": "pair", "steps": [{"name": "one", "worker": "Echo", "config": {"value": 1}}]}
    chain_id = httpx.post(f"{server.api}/chains", json=chain).json()["ChainId"]
    loose = submit(server, "Echo", {"value": 2})
    open_page(page, server, "#/tasks")
    link = page.locator("#task-rows a.chain-link")
    expect(link).to_have_count(1)
    expect(link).to_have_attribute("href", f"#/chains/{chain_id}")
    expect(page.locator(f"tr[data-task='{loose}'] td.c-chain")).to_have_text("—")
    link.click()
    expect(page.locator("#chain-detail .detail-head h1")).to_contain_text("pair")


LOCAL_TIME = """(seconds) => {
  // A time as a datetime-local input takes it: the browser's local time, to the second.
  const d = new Date(seconds * 1000);
  const two = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}` +
    `T${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}"""


def shown_ids(page: Page) -> list[str]:
    rows = page.locator("#task-rows tr")
    return [rows.nth(i).get_attribute("data-task") or "" for i in range(rows.count())]


def test_find_a_task_by_the_start_of_its_id(page: Page, server: ServerProcess) -> None:
    ids = [submit(server, "Echo", {"value": n}) for n in range(20)]
    open_page(page, server, "#/tasks")
    find = page.get_by_role("searchbox", name="Find a task by its id")
    # Enough of an id for one task: it opens.
    find.fill(ids[5][:10].upper())
    find.press("Enter")
    page.wait_for_url(re.compile(rf"#/tasks/{ids[5]}$"))
    expect(page.locator("#task-detail .detail-head .badge")).to_have_text("Completed")

    # A start that several ids share (20 ids, 16 digits: one is shared): they are listed.
    shared = next(c for c in "0123456789abcdef" if sum(i.startswith(c) for i in ids) > 1)
    wanted = sorted(i for i in ids if i.startswith(shared))
    page.goto(f"{server.url}/tasky/ui#/tasks")
    find = page.get_by_role("searchbox", name="Find a task by its id")
    find.fill(shared)
    find.press("Enter")
    expect(page.locator("#id-filter-note")).to_contain_text(f"Tasks whose id starts with {shared}")
    expect(page.locator("#task-rows tr")).to_have_count(len(wanted))
    assert sorted(shown_ids(page)) == wanted
    assert f"id={shared}" in page.url
    page.locator("#drop-id-filter").click()
    expect(page.locator("#task-rows tr")).to_have_count(20)

    # No such task: said, and nothing else changes.
    absent = next(
        f"{n:06x}" for n in range(1 << 24) if not any(i.startswith(f"{n:06x}") for i in ids)
    )
    find.fill(absent)
    find.press("Enter")
    expect(page.locator("#toasts")).to_contain_text(f"No task id starts with {absent}.")
    expect(page.locator("#task-rows tr")).to_have_count(20)


def _same_time(local: str) -> re.Pattern[str]:
    """What a datetime-local input shows for ``local`` (YYYY-MM-DDTHH:MM:SS): the browser
    normalizes a value of whole minutes to YYYY-MM-DDTHH:MM."""
    return re.compile("^" + re.escape(local.removesuffix(":00")) + "(:00)?$")


def test_search_task_errors_and_creation_times(page: Page, server: ServerProcess) -> None:
    disk = submit(server, "Flaky", {"message": "disk full on /var"})
    wait_sync(server.api, disk, "Failed")
    time.sleep(1.1)  # a whole second between the two, to cut between them to the second
    net = submit(server, "Flaky", {"message": "network down"})
    wait_sync(server.api, net, "Failed")
    open_page(page, server, "#/tasks")
    expect(page.locator("#task-rows tr")).to_have_count(2)

    error = page.get_by_role("searchbox", name="Text in the error")
    error.fill("DISK")
    expect(page.locator("#task-rows tr")).to_have_count(1)
    expect(page.locator(f"tr[data-task='{disk}']")).to_be_visible()
    assert "error=DISK" in page.url
    error.fill("nothing like it")
    expect(page.locator(".empty")).to_contain_text("No tasks match these filters.")
    error.fill("")
    expect(page.locator("#task-rows tr")).to_have_count(2)

    created = httpx.get(f"{server.api}/tasks/{net}").json()["CreatedAt"]
    cut = page.evaluate(LOCAL_TIME, int(created))  # after the first, not after the second
    page.locator("#filter-from").fill(cut)
    expect(page.locator("#task-rows tr")).to_have_count(1)
    expect(page.locator(f"tr[data-task='{net}']")).to_be_visible()
    page.locator("#filter-from").fill("")
    page.locator("#filter-to").fill(cut)
    expect(page.locator("#task-rows tr")).to_have_count(1)
    expect(page.locator(f"tr[data-task='{disk}']")).to_be_visible()
    # Kept in the address: a reload shows the same search.
    page.reload()
    # The same minute and second; a datetime-local input leaves out ":00" seconds.
    expect(page.locator("#filter-to")).to_have_value(_same_time(cut))
    expect(page.locator("#task-rows tr")).to_have_count(1)
    page.locator("#clear-filters").click()
    expect(page.locator("#task-rows tr")).to_have_count(2)
