"""One task's view in a real browser (Debian's chromium, see test_ui_browser): its log searched and
downloaded, a log that stays empty, and a cancel that is not dressed as an error."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from tests.conftest import ServerProcess
from tests.helpers import wait_sync
from tests.test_ui_browser import XSS, browser, open_page, page, submit

__all__ = ["browser", "page"]  # the fixtures, imported so pytest finds them here


def test_search_within_the_log_and_download_it(
    page: Page, server: ServerProcess, tmp_path: Path
) -> None:
    task_id = submit(server, "Sleeper", {"seconds": 3})
    wait_sync(server.api, task_id, "Completed")
    open_page(page, server, f"#/tasks/{task_id}")
    logs = page.locator("#task-logs")
    expect(logs).to_contain_text("slept 3 of 3 seconds")
    expect(page.locator("#logs-info")).to_have_text("3 lines")

    search = page.get_by_role("searchbox", name="Search the log")
    search.fill("2 OF 3")  # case does not matter
    expect(page.locator("#logs-info")).to_have_text("1 of 3 lines match")
    expect(logs).to_contain_text("slept 2 of 3 seconds")
    expect(logs).not_to_contain_text("slept 1 of 3")
    expect(logs.locator("mark")).to_have_text(["2 of 3"])
    search.fill("no such words")
    expect(page.locator("#logs-empty")).to_have_text("No line matches.")
    search.fill("")
    expect(page.locator("#logs-info")).to_have_text("3 lines")

    with page.expect_download() as started:
        page.get_by_role("button", name="Download").click()
    download = started.value
    assert download.suggested_filename == f"tasky-{task_id}.log"
    target = tmp_path / "saved.log"
    download.save_as(target)
    lines = target.read_text().splitlines()
    assert [line.split("  ", 1)[1] for line in lines] == [
        f"slept {n} of 3 seconds" for n in (1, 2, 3)
    ]
    assert lines[0].startswith("20") and "T" in lines[0].split("  ")[0]  # ISO 8601 times


def test_a_search_marks_untrusted_lines_as_text(page: Page, server: ServerProcess) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    task_id = submit(server, "Echo", {"value": XSS})
    wait_sync(server.api, task_id, "Completed")
    open_page(page, server, f"#/tasks/{task_id}")
    expect(page.locator("#task-logs")).to_contain_text(XSS)
    page.get_by_role("searchbox", name="Search the log").fill("onerror=alert")
    expect(page.locator("#task-logs mark")).to_have_text(["onerror=alert"])
    expect(page.locator("#task-logs")).to_contain_text(XSS)
    page.wait_for_timeout(300)
    assert page.locator("img").count() == 0
    assert dialogs == []


def test_a_finished_task_without_log_lines_says_so(page: Page, server: ServerProcess) -> None:
    running = submit(server, "Hold", {"seconds": 60})
    open_page(page, server, f"#/tasks/{running}")
    empty = page.locator("#logs-empty")
    expect(empty).to_have_text("No log lines yet.")  # it may still write some
    page.locator("#task-detail .detail-head button[data-action='cancel']").click()
    expect(page.locator("#task-detail .detail-head .badge")).to_have_text("Canceled")
    expect(empty).to_have_text("No log lines.")

    failed = submit(server, "Flaky", {})
    wait_sync(server.api, failed, "Failed")
    page.goto(f"{server.url}/tasky/ui#/tasks/{failed}")
    expect(page.locator("#logs-empty")).to_have_text("No log lines.")


def test_your_own_cancel_is_a_note_not_an_error(page: Page, server: ServerProcess) -> None:
    task_id = submit(server, "Hold", {"seconds": 60})
    open_page(page, server, f"#/tasks/{task_id}")
    page.locator("#task-detail .detail-head button[data-action='cancel']").click()
    note = page.locator("#task-canceled")
    expect(note).to_have_text("This task was canceled on request, before it finished.")
    expect(page.locator("#task-output .error-box")).to_have_count(0)
    expect(page.locator("#task-output").locator("xpath=..").locator("h2")).to_have_text("Result")

    # A real failure is still an error.
    failed = submit(server, "Flaky", {"message": "disk full"})
    wait_sync(server.api, failed, "Failed")
    page.goto(f"{server.url}/tasky/ui#/tasks/{failed}")
    expect(page.locator("#task-error.error-box")).to_contain_text("disk full")
    expect(page.locator("#task-canceled")).to_have_count(0)
