"""The web page in a real browser: Debian's chromium driven by Playwright, against real servers.

Playwright's own browser download is never used: ``executable_path`` points at /usr/bin/chromium
(``make test`` installs it). Screenshots go to the test's temporary directory, or to
``UI_SCREENSHOTS_DIR`` when set (``UI_SCREENSHOTS_DIR=docs/images`` refreshes the README's).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.conftest import ServerProcess

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
XSS = "<img src=x onerror=alert(1)>"
WAIT_MS = 15_000
expect.set_options(timeout=WAIT_MS)

if not CHROMIUM.exists():
    # Locally a missing browser skips these tests; on CI (make test installs it) it is an error.
    if os.environ.get("CI"):
        raise RuntimeError(f"{CHROMIUM} is missing: run scripts/install-system-deps.sh")
    pytest.skip(f"{CHROMIUM} is not installed", allow_module_level=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(WAIT_MS)
    opened = context.new_page()
    yield opened
    context.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    target = os.environ.get("UI_SCREENSHOTS_DIR")
    directory = Path(target) if target else tmp_path / "screenshots"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def submit(server: ServerProcess, worker: str, config: dict[str, Any]) -> str:
    r = httpx.post(f"{server.api}/workers/{worker}", json=config)
    assert r.status_code == 201, r.text
    task_id: str = r.json()["TaskId"]
    return task_id


def status_of(server: ServerProcess, task_id: str) -> str:
    status: str = httpx.get(f"{server.api}/tasks/{task_id}/status").json()["Status"]
    return status


def open_page(page: Page, server: ServerProcess, route: str = "") -> None:
    page.goto(f"{server.url}/tasky/ui{route}")
    expect(page.locator("#live")).to_have_attribute("data-state", "live")


def button(page: Page, action: str, scope: str = "#task-detail .detail-head") -> Any:
    return page.locator(f"{scope} button[data-action='{action}']")


def test_sleeper_from_the_form_through_pause_resume_cancel(
    page: Page, server: ServerProcess
) -> None:
    response = page.goto(server.url + "/")  # / redirects to the page
    assert response is not None and response.url.endswith("/tasky/ui")
    expect(page.locator("#live")).to_have_attribute("data-state", "live")
    page.get_by_role("link", name="New task").first.click()
    page.locator(".worker-item[data-worker='Sleeper']").click()
    seconds = page.locator("#field-seconds")
    expect(seconds).to_have_value("60")  # the schema's default
    expect(page.locator("[data-field='seconds'] .help")).to_contain_text("0 to 604800")
    seconds.fill("30")
    page.locator("#submit-task").click()
    page.wait_for_url(re.compile(r"#/tasks/[0-9a-f]{32}$"))
    task_id = page.url.rsplit("/", 1)[1]
    badge = page.locator("#task-detail .detail-head .badge")
    expect(badge).to_have_text("Running")
    expect(page.locator("#task-config pre")).to_contain_text('"seconds": 30')

    # Progress and the log follow live (no reload): the second line arrives while we watch.
    expect(page.locator("#progress-text")).to_have_text(re.compile(r"^[1-9][0-9.]*% · \d+ of 30 s"))
    logs = page.locator("#task-logs")
    expect(logs).to_contain_text("slept 1 of 30 seconds")
    expect(logs).to_contain_text("slept 2 of 30 seconds")

    # Only what the state machine and the worker allow is enabled.
    expect(button(page, "pause")).to_be_enabled()
    expect(button(page, "resume")).to_be_disabled()
    expect(button(page, "run")).to_be_disabled()
    button(page, "pause").click()
    expect(badge).to_have_text("Paused")
    assert status_of(server, task_id) == "Paused"
    expect(button(page, "pause")).to_be_disabled()
    expect(button(page, "resume")).to_be_enabled()

    button(page, "resume").click()
    expect(badge).to_have_text("Running")
    assert status_of(server, task_id) == "Running"

    button(page, "cancel").click()
    expect(badge).to_have_text("Canceled")
    assert status_of(server, task_id) == "Canceled"
    expect(button(page, "cancel")).to_be_disabled()
    expect(button(page, "run")).to_be_enabled()
    expect(page.locator("#task-output")).to_contain_text("canceled")


def test_validation_errors_show_next_to_their_fields(page: Page, server: ServerProcess) -> None:
    open_page(page, server, "#/workers/Sleeper")
    page.locator("#field-seconds").fill("-5")
    page.locator("#submit-task").click()
    error = page.locator("[data-field='seconds'] .field-error")
    expect(error).to_contain_text("greater than or equal to 0")
    expect(page.locator("[data-field='seconds']")).to_have_class(re.compile("invalid"))
    assert "#/workers" in page.url  # nothing was created
    tasks = httpx.get(f"{server.api}/tasks").json()["Tasks"]
    assert tasks == []

    page.locator(".worker-item[data-worker='CopyFile']").click()
    expect(page.locator("#task-form")).to_have_attribute("data-worker", "CopyFile")
    expect(page.locator("[data-field='source'] .required")).to_be_visible()
    page.locator("#submit-task").click()
    expect(page.locator("[data-field='source'] .field-error")).to_contain_text("required")
    expect(page.locator("[data-field='destination'] .field-error")).to_contain_text("required")


def test_ifconfig_result_is_shown(page: Page, server: ServerProcess) -> None:
    open_page(page, server, "#/workers/Ifconfig")
    expect(page.locator("#task-form")).to_contain_text("needs no config")
    page.locator("#submit-task").click()
    page.wait_for_url(re.compile(r"#/tasks/[0-9a-f]{32}$"))
    expect(page.locator("#task-detail .detail-head .badge")).to_have_text("Completed")
    output = page.locator("#task-output pre")
    expect(output).to_contain_text('"Interfaces"')
    expect(output).to_contain_text('"interface_name": "lo"')


def test_untrusted_output_and_logs_stay_text(page: Page, server: ServerProcess) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    response = page.goto(f"{server.url}/tasky/ui#/workers/Echo")
    assert response is not None
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    page.locator("#field-value").fill(XSS)
    page.locator("#submit-task").click()
    page.wait_for_url(re.compile(r"#/tasks/[0-9a-f]{32}$"))
    expect(page.locator("#task-detail .detail-head .badge")).to_have_text("Completed")
    expect(page.locator("#task-output pre")).to_contain_text(f'"string_output": "{XSS}"')
    expect(page.locator("#task-logs")).to_contain_text(f"echo '{XSS}'")

    # The same text as a failure's Error, and everything in the task table.
    failed = submit(server, "Flaky", {"message": XSS})
    page.goto(f"{server.url}/tasky/ui#/tasks/{failed}")
    expect(page.locator("#task-error")).to_contain_text(XSS)
    page.goto(f"{server.url}/tasky/ui#/tasks")
    expect(page.locator(f"tr[data-task='{failed}']")).to_be_visible()
    page.wait_for_timeout(300)  # an onerror handler would have fired by now
    assert page.locator("img").count() == 0
    assert dialogs == []


def test_task_table_is_live_and_acts_on_rows(page: Page, server: ServerProcess) -> None:
    open_page(page, server, "#/tasks")
    expect(page.locator(".empty")).to_contain_text("No tasks yet")
    held = submit(server, "Hold", {"seconds": 60})
    row = page.locator(f"tr[data-task='{held}']")
    expect(row).to_have_attribute("data-status", "Running")  # arrived without a reload
    expect(row.locator("td.c-worker")).to_have_text("Hold")

    no_pause = submit(server, "NoPause", {"seconds": 60})
    other = page.locator(f"tr[data-task='{no_pause}']")
    expect(other).to_have_attribute("data-status", "Running")
    expect(other.locator("button[data-action='pause']")).to_be_disabled()  # not supported
    expect(other.locator("button[data-action='cancel']")).to_be_enabled()

    row.locator("button[data-action='pause']").click()
    expect(row).to_have_attribute("data-status", "Paused")
    row.locator("button[data-action='resume']").click()
    expect(row).to_have_attribute("data-status", "Running")
    row.locator("button[data-action='cancel']").click()
    expect(row).to_have_attribute("data-status", "Canceled")
    expect(row.locator("button[data-action='run']")).to_be_enabled()

    page.locator("#filter-status").select_option("Canceled")
    expect(page.locator("#task-rows tr")).to_have_count(1)
    expect(row).to_be_visible()
    assert "status=Canceled" in page.url
    page.locator("#filter-status").select_option("")
    page.locator("#filter-worker").select_option("NoPause")
    expect(page.locator("#task-rows tr")).to_have_count(1)
    expect(other).to_be_visible()
    httpx.post(f"{server.api}/tasks/{no_pause}/cancel")
    expect(other).to_have_attribute("data-status", "Canceled")


def test_pages_of_tasks(page: Page, server: ServerProcess) -> None:
    ids = [submit(server, "Echo", {"value": n}) for n in range(120)]
    open_page(page, server, "#/tasks?worker=Echo")
    rows = page.locator("#task-rows tr")
    expect(rows).to_have_count(50)
    expect(rows.first).to_have_attribute("data-task", ids[-1])  # newest first
    page.locator("#page-older").click()
    expect(rows.first).to_have_attribute("data-task", ids[-51])
    page.locator("#page-older").click()
    expect(rows).to_have_count(20)
    expect(rows.last).to_have_attribute("data-task", ids[0])
    expect(page.locator("#page-older")).to_be_disabled()
    page.locator("#page-newer").click()
    expect(rows.first).to_have_attribute("data-task", ids[-51])


def test_statistics_and_charts(page: Page, server: ServerProcess) -> None:
    for n in range(4):
        submit(server, "Echo", {"value": n})
    submit(server, "Flaky", {})
    open_page(page, server, "#/stats/Echo")
    detail = page.locator("#stats-detail")
    expect(detail).to_have_attribute("data-worker", "Echo")
    expect(detail.locator(".s-completed .stat-value")).to_have_text("4")
    charts = detail.locator("figure.chart svg")
    expect(charts).to_have_count(2)  # run-time distribution and throughput
    expect(charts.nth(1).locator("rect.fill-completed")).to_have_count(1)
    page.locator("#stats-overview tr[data-worker='Flaky']").click()
    expect(detail).to_have_attribute("data-worker", "Flaky")
    expect(detail.locator("dd.bad")).to_have_text("100%")


def test_token_is_asked_once_and_kept(browser: Browser, server_factory: Any) -> None:
    server: ServerProcess = server_factory("--token", "s3cret")
    context = browser.new_context()
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    try:
        page.goto(f"{server.url}/tasky/ui#/workers")
        dialog = page.locator("#token-dialog")
        expect(dialog).to_be_visible()
        page.locator("#token-input").fill("wrong")
        page.locator("#token-form button[type='submit']").click()
        expect(page.locator("#token-error")).to_contain_text("not accepted")
        page.locator("#token-input").fill("s3cret")
        page.locator("#token-form button[type='submit']").click()
        expect(dialog).to_be_hidden()
        expect(page.locator(".worker-item[data-worker='Sleeper']")).to_be_visible()
        expect(page.locator("#live")).to_have_attribute("data-state", "live")
        page.reload()  # kept for the tab: no second prompt
        expect(page.locator(".worker-item").first).to_be_visible()
        expect(dialog).to_be_hidden()
    finally:
        context.close()


def test_phone_and_desktop_screenshots(
    browser: Browser, page: Page, server: ServerProcess, shots: Path
) -> None:
    for seconds in (0.2, 0.4, 0.7, 1.1, 1.6):  # a run-time distribution worth a chart
        submit(server, "Sleeper", {"seconds": seconds})
    sleeping = submit(server, "Sleeper", {"seconds": 600})
    submit(server, "Ifconfig", {})
    submit(server, "Echo", {"value": {"hello": "world"}})
    submit(server, "Flaky", {"message": "disk full"})
    held = submit(server, "Hold", {"seconds": 600})
    httpx.post(f"{server.api}/tasks/{held}/actions", json={"action": "pause"})
    stopped = submit(server, "Sleeper", {"seconds": 600})
    httpx.post(f"{server.api}/tasks/{stopped}/cancel")
    submit(server, "Sleeper", {"seconds": 5})

    open_page(page, server, "#/tasks")
    expect(page.locator("#task-rows tr")).to_have_count(12)
    pct = page.locator(f"tr[data-task='{sleeping}'] .pct")
    expect(pct).to_have_text(re.compile(r"^[1-9]"))
    page.screenshot(path=str(shots / "ui-tasks.png"))
    page.goto(f"{server.url}/tasky/ui#/tasks/{sleeping}")
    expect(page.locator("#task-logs")).to_contain_text("slept 2 of 600 seconds")
    page.screenshot(path=str(shots / "ui-task.png"))

    phone = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    phone.set_default_timeout(WAIT_MS)
    small = phone.new_page()
    try:
        open_page(small, server, "#/tasks")
        rows = small.locator("#task-rows tr")
        expect(rows).to_have_count(12)
        expect(small.locator("#task-table thead")).to_be_hidden()  # rows are cards here
        overflow = "() => document.documentElement.scrollWidth <= 390"
        assert small.evaluate(overflow)
        card = small.locator(f"tr[data-task='{sleeping}']")
        box = card.bounding_box()
        assert box is not None and box["width"] <= 390
        small.screenshot(path=str(shots / "ui-phone.png"))
        card.locator("button[data-action='pause']").tap()
        expect(card).to_have_attribute("data-status", "Paused")
        views = {
            f"#/tasks/{sleeping}": "#task-detail .detail-head .badge",
            "#/workers/CopyFile": "#task-form[data-worker='CopyFile']",
            "#/stats/Sleeper": "#stats-detail figure.chart svg",
            "#/chains": "main p.empty",
        }
        for route, shown in views.items():
            small.goto(f"{server.url}/tasky/ui{route}")
            small.locator(shown).first.wait_for()
            assert small.evaluate(overflow), route
    finally:
        phone.close()
    page.goto(f"{server.url}/tasky/ui#/stats/Sleeper")
    completed = page.locator("#stats-detail .s-completed .stat-value")
    expect(completed).to_have_text(re.compile(r"^[5-9]$"))
    expect(
        page.locator("#stats-detail figure.chart").first.locator("rect.fill-primary")
    ).not_to_have_count(0)
    page.screenshot(path=str(shots / "ui-stats.png"), full_page=True)
    for name in ("ui-tasks.png", "ui-task.png", "ui-phone.png", "ui-stats.png"):
        assert (shots / name).stat().st_size > 10_000


def test_edit_the_config_of_a_queued_task(page: Page, server: ServerProcess) -> None:
    submit(server, "Hold", {"seconds": 60})  # Hold runs one at a time: the next one waits
    waiting = submit(server, "Hold", {"seconds": 60})
    assert status_of(server, waiting) == "Queued"
    open_page(page, server, f"#/tasks/{waiting}")
    expect(page.locator("#task-detail .detail-head .badge")).to_have_text("Queued")
    page.locator("#edit-config").click()
    seconds = page.locator("#field-edit-seconds")
    expect(seconds).to_have_value("60")  # the task's own config, not the default
    seconds.fill("-1")
    page.get_by_role("button", name="Save config").click()
    expect(page.locator("[data-field='seconds'] .field-error")).to_contain_text("greater than")
    seconds.fill("7.5")
    page.get_by_role("button", name="Save config").click()
    expect(page.locator("#task-config pre")).to_contain_text('"seconds": 7.5')
    config = httpx.get(f"{server.api}/tasks/{waiting}").json()["Config"]
    assert config == {"seconds": 7.5}


def test_a_chain_and_its_steps_live(page: Page, server: ServerProcess) -> None:
    chain = {
        "name": "nightly",
        "steps": [
            {"name": "wait", "worker": "Sleeper", "config": {"seconds": 1}},
            {
                "name": "checks",
                "parallel": [
                    {"name": "net", "worker": "Ifconfig"},
                    {"name": "say", "worker": "Echo", "config": {"value": XSS}},
                ],
            },
        ],
    }
    r = httpx.post(f"{server.api}/chains", json=chain)
    assert r.status_code == 201, r.text
    chain_id = r.json()["ChainId"]
    open_page(page, server, "#/chains")
    row = page.locator(f"tr[data-chain='{chain_id}']")
    expect(row).to_contain_text("nightly")
    row.get_by_role("link").click()
    detail = page.locator("#chain-detail")
    expect(detail.locator(".chain-step[data-step='wait']")).to_have_attribute(
        "data-status", "Running"
    )
    expect(detail.locator(".chain-step")).to_have_count(3)
    expect(detail.locator(".chain-stage-name").nth(1)).to_contain_text("checks (parallel)")
    # Without a reload, the steps finish one after another and the chain completes.
    expect(detail.locator(".detail-head .badge")).to_have_text("Completed")
    for step in ("wait", "net", "say"):
        expect(detail.locator(f".chain-step[data-step='{step}']")).to_have_attribute(
            "data-status", "Completed"
        )
    expect(detail.locator("pre.json").first).to_contain_text(XSS)
    assert page.locator("img").count() == 0
    detail.locator(".chain-step[data-step='net'] a").click()
    page.wait_for_url(re.compile(r"#/tasks/[0-9a-f]{32}$"))
    expect(page.locator("#task-output pre")).to_contain_text("interface_name")


def test_the_page_reconnects_after_a_server_restart(page: Page, server: ServerProcess) -> None:
    before = submit(server, "Echo", {"value": "before"})
    open_page(page, server, "#/tasks")
    expect(page.locator(f"tr[data-task='{before}']")).to_be_visible()
    server.stop()
    expect(page.locator("#live")).to_have_attribute("data-state", "reconnecting")
    server.start()  # same port, same data
    expect(page.locator("#live")).to_have_attribute("data-state", "live")
    # The new run numbers its events afresh: the stream says so (stream.reset) and the live
    # table keeps working without a reload.
    after = submit(server, "Echo", {"value": "after"})
    expect(page.locator(f"tr[data-task='{after}']")).to_have_attribute("data-status", "Completed")
    expect(page.locator(f"tr[data-task='{before}']")).to_be_visible()


def test_choice_lists_and_line_lists_in_generated_forms(page: Page, server: ServerProcess) -> None:
    open_page(page, server, "#/workers/Command")
    program = page.locator("#field-program")
    options = program.locator("option")
    expect(options).to_contain_text(["echo", "date", "uname"])  # the enum, as a choice list
    program.select_option(label="echo")
    expect(page.locator("[data-field='args'] .help")).to_contain_text("one per line")
    page.locator("#field-args").fill("hello\n<b>world</b>\n")
    page.locator("#submit-task").click()
    page.wait_for_url(re.compile(r"#/tasks/[0-9a-f]{32}$"))
    expect(page.locator("#task-detail .detail-head .badge")).to_have_text("Completed")
    expect(page.locator("#task-config pre")).to_contain_text('"hello"')
    expect(page.locator("#task-output pre")).to_contain_text("hello <b>world</b>")
    assert page.locator("#task-output b").count() == 0


def test_page_reads_never_overlap(page: Page, server: ServerProcess) -> None:
    """The helpers behind every live view, run in the browser: no overlapping reads (answers
    out of order, log lines twice) and no re-entrant refresh loops."""
    open_page(page, server, "#/tasks")
    result = page.evaluate(
        """async () => {
          const { throttle, singleFlight } = await import("/tasky/ui/static/js/dom.js");
          let running = 0, most = 0, runs = 0, release;
          const read = singleFlight(async () => {
            running += 1; most = Math.max(most, running); runs += 1;
            await new Promise((resolve) => { release = resolve; });
            running -= 1;
            return runs;
          });
          const first = read();
          const second = read();  // while the first runs: marks one more run
          const third = read();   // ... still just one more
          release();
          await new Promise((resolve) => setTimeout(resolve, 0));
          release();
          const answers = await Promise.all([first, second, third]);
          let fired = 0;
          const soon = throttle(() => { fired += 1; soon(); }, 60000);
          soon();  // calls itself: must wait for its timer, not recurse
          const firedAtOnce = fired;
          soon.cancel();
          return { most, runs, answers, firedAtOnce };
        }"""
    )
    assert result == {"most": 1, "runs": 2, "answers": [2, 2, 2], "firedAtOnce": 1}


def test_detail_catches_a_change_that_lands_during_its_first_read(
    page: Page, server: ServerProcess
) -> None:
    """The task finishes while the detail view's first read is in flight: that read answers
    with the old status, and the view must still end up showing the new one."""
    open_page(page, server)
    expect(page.locator("#live")).to_have_attribute("data-state", "live")
    task_id = submit(server, "Sleeper", {"seconds": 1})
    stale: list[str] = []

    def hold_first_read(route: Any) -> None:
        if stale:
            route.continue_()
            return
        response = route.fetch()  # read now, while the task still runs...
        stale.append(response.text())
        deadline = time.monotonic() + 10
        while status_of(server, task_id) != "Completed" and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # ...and answer only after the Completed event reached the page
        route.fulfill(response=response)

    page.route(re.compile(rf".*/tasky/v1/tasks/{task_id}$"), hold_first_read)
    page.goto(f"{server.url}/tasky/ui#/tasks/{task_id}")
    expect(page.locator("#task-detail .detail-head .badge")).to_have_text("Completed")
    assert '"Status":"Running"' in stale[0]


def test_task_table_catches_a_change_that_lands_during_its_first_read(
    page: Page, server: ServerProcess
) -> None:
    """The same race on the task table: its first page is read while a task still runs."""
    open_page(page, server, "#/workers")
    expect(page.locator("#live")).to_have_attribute("data-state", "live")
    task_id = submit(server, "Sleeper", {"seconds": 1})
    held: list[bool] = []

    def hold_first_page(route: Any) -> None:
        if held:
            route.continue_()
            return
        held.append(True)
        response = route.fetch()
        deadline = time.monotonic() + 10
        while status_of(server, task_id) != "Completed" and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        route.fulfill(response=response)

    page.route(re.compile(r".*/tasky/v1/tasks\?.*"), hold_first_page)
    page.evaluate("location.hash = '#/tasks'")
    expect(page.locator(f"tr[data-task='{task_id}'] .badge")).to_have_text("Completed")


def test_run_time_chart_reads_the_apis_buckets(page: Page, server: ServerProcess) -> None:
    """The chart takes the worker statistics' RunTimeHistogram as served (buckets with their
    bounds in seconds), so every task lands in the bar of its own run time."""
    for n in range(3):
        submit(server, "Echo", {"value": n})
    stats: dict[str, Any] = {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        stats = httpx.get(f"{server.url}/tasky/v1/workers/Echo/statistics").json()
        if sum(b["Count"] for b in stats["RunTimeHistogram"]) >= 3:
            break
        time.sleep(0.1)
    served = stats["RunTimeHistogram"]
    assert sum(b["Count"] for b in served) == 3
    open_page(page, server, "#/stats/Echo")
    bars = page.evaluate(
        """async (histogram) => {
          const { histogramBars } = await import("/tasky/ui/static/js/views/stats.js");
          return histogramBars(histogram).map((bar) => bar.values[0]);
        }""",
        served,
    )
    assert sum(bars) == 3
    # One served bucket of 7 tasks at 2 s: all 7 in the bar whose range holds 2 s.
    tips = page.evaluate(
        """async () => {
          const { histogramBars } = await import("/tasky/ui/static/js/views/stats.js");
          const bars = histogramBars([{ FromSeconds: 1.9487, ToSeconds: 2.1436, Count: 7 }]);
          return bars.filter((bar) => bar.values[0] > 0).map((bar) => bar.tip);
        }"""
    )
    assert len(tips) == 1 and tips[0].endswith(": 7 tasks") and tips[0].startswith("1.9")
