"""Accessibility of the page, in a real browser (Debian's chromium, see test_ui_browser): axe-core
finds no serious or critical problem on the main views, on a desktop and on a phone, and every
action is reachable with the keyboard, showing where the focus is.

axe-core is a test asset (tests/assets/axe-core, its README says which version and why it is
there). It is injected with Playwright's ``add_script_tag``, which the page's own CSP would
refuse (no inline script): the contexts of these tests bypass the CSP for that.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import ServerProcess
from tests.helpers import wait_sync
from tests.test_ui_browser import WAIT_MS, browser, open_page, status_of, submit

__all__ = ["browser"]  # the fixture, imported so pytest finds it here

AXE = Path(__file__).parent / "assets" / "axe-core" / "axe.min.js"
AXE_SHA256 = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"
SERIOUS = ("serious", "critical")

RUN_AXE = """async () => {
  const result = await axe.run(document, { resultTypes: ["violations"] });
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ") + " | " + n.failureSummary),
  }));
}"""

# What has the focus, and whether it shows: an outline, or (a node of the chain graph, which is
# SVG) a thick stroke round its box. It must also be on screen.
FOCUS = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  let ring = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2;
  const box = el.matches(".chain-node-link") ? el.querySelector(".node-box") : null;
  if (box) ring = parseFloat(getComputedStyle(box).strokeWidth) >= 3;
  const r = el.getBoundingClientRect();
  const name = el.getAttribute("aria-label") || el.id || (el.textContent || "").trim().slice(0, 40);
  return {
    what: `${el.tagName.toLowerCase()} ${name}`,
    ring,
    shown: r.width > 0 && r.height > 0 && r.bottom > 0 && r.top < innerHeight,
  };
}"""


def a11y_context(browser: Browser, width: int) -> Any:
    phone = width < 500
    context = browser.new_context(
        viewport={"width": width, "height": 844 if phone else 860},
        is_mobile=phone,
        has_touch=phone,
        bypass_csp=True,  # only so that add_script_tag may inject axe-core
    )
    context.set_default_timeout(WAIT_MS)
    return context


@pytest.fixture
def desktop(browser: Browser) -> Iterator[Page]:
    context = a11y_context(browser, 1280)
    yield context.new_page()
    context.close()


def every_kind_of_task(server: ServerProcess) -> dict[str, str]:
    """Tasks in every status, a finished chain with a parallel group, and a running chain."""
    ids = {
        "running": submit(server, "Hold", {"seconds": 120}),
        "queued": submit(server, "Hold", {"seconds": 120}),
        "sleeping": submit(server, "Sleeper", {"seconds": 120}),
        "completed": submit(server, "Echo", {"value": {"hello": "world"}}),
        "failed": submit(server, "Flaky", {"message": "disk full"}),
        "canceled": submit(server, "NoPause", {"seconds": 120}),
    }
    httpx.post(f"{server.api}/tasks/{ids['canceled']}/cancel")
    paused = submit(server, "Spin", {"seconds": 120})
    wait_sync(server.api, paused, "Running")
    httpx.post(f"{server.api}/tasks/{paused}/actions", json={"action": "pause"})
    ids["paused"] = paused
    done = {
        "name": "done",
        "steps": [
            {"name": "first", "worker": "Echo", "config": {"value": 1}},
            {
                "name": "pair",
                "parallel": [
                    {"name": "left", "worker": "Echo", "config": {"value": 2}},
                    {"name": "right", "worker": "Flaky", "config": {}},
                ],
            },
            {"name": "tidy", "worker": "Echo", "when": "failure", "config": {"value": 3}},
        ],
    }
    ids["chain"] = httpx.post(f"{server.api}/chains", json=done).json()["ChainId"]
    busy = {
        "name": "busy",
        "steps": [{"name": "nap", "worker": "Sleeper", "config": {"seconds": 120}}],
    }
    ids["busy"] = httpx.post(f"{server.api}/chains", json=busy).json()["ChainId"]
    wait_sync(server.api, ids["failed"], "Failed")
    return ids


def views(ids: dict[str, str]) -> dict[str, str]:
    """Route -> what shows that the view is drawn."""
    return {
        "#/tasks": "#task-rows tr .c-actions button",
        f"#/tasks/{ids['sleeping']}": "#task-logs",
        f"#/tasks/{ids['failed']}": "#task-error",
        f"#/tasks/{ids['canceled']}": "#task-canceled",
        "#/workers/CopyFile": "#task-form[data-worker='CopyFile']",
        "#/stats/Echo": "#stats-detail figure.chart svg",
        "#/chains": "#chain-table tbody tr",
        f"#/chains/{ids['chain']}": "#chain-detail .detail-head .badge.status-failed",
        f"#/chains/{ids['busy']}": "#chain-graph g.chain-node[data-status='Running']",
        "#/chains/new": "#adhoc-chain",
        "#/schedules": "#add-schedule",
    }


def test_the_axe_core_asset_is_the_pinned_one() -> None:
    assert hashlib.sha256(AXE.read_bytes()).hexdigest() == AXE_SHA256


@pytest.mark.parametrize("width", [1280, 390])
def test_axe_finds_no_serious_problem_on_the_main_views(
    browser: Browser, server: ServerProcess, width: int
) -> None:
    ids = every_kind_of_task(server)
    context = a11y_context(browser, width)
    page = context.new_page()
    found: dict[str, list[dict[str, Any]]] = {}
    try:
        open_page(page, server)
        for route, drawn in views(ids).items():
            page.goto(f"{server.url}/tasky/ui{route}")
            page.locator(drawn).first.wait_for()
            if route == "#/tasks":
                # With the bulk bar and a bulk summary showing as well.
                page.on("dialog", lambda dialog: dialog.accept())
                page.locator(f"tr[data-task='{ids['completed']}'] input.select-task").check()
                page.locator("#bulk-resume").click()
                expect(page.locator("#bulk-summary .bulk-reasons")).to_be_visible()
                page.locator(f"tr[data-task='{ids['failed']}'] input.select-task").check()
            page.add_script_tag(path=str(AXE))
            violations = page.evaluate(RUN_AXE)
            serious = [v for v in violations if v["impact"] in SERIOUS]
            if serious:
                found[route] = serious
    finally:
        context.close()
    assert found == {}


def tab_until(page: Page, wanted: str, limit: int = 120) -> list[str]:
    """Press Tab until the element matching ``wanted`` has the focus; every element passed on
    the way must show its focus and be on screen. Returns what was passed."""
    passed: list[str] = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        focus = page.evaluate(FOCUS)
        if focus is None:
            continue
        assert focus["ring"], f"no visible focus on {focus['what']}"
        assert focus["shown"], f"the focus is off screen: {focus['what']}"
        passed.append(focus["what"])
        if page.evaluate("(css) => document.activeElement.matches(css)", wanted):
            return passed
    raise AssertionError(f"{wanted} not reached with Tab; passed {passed}")


def test_every_action_is_reachable_with_the_keyboard(desktop: Page, server: ServerProcess) -> None:
    page = desktop
    held = submit(server, "Hold", {"seconds": 120})
    echo = submit(server, "Echo", {"value": "x"})
    wait_sync(server.api, echo, "Completed")
    open_page(page, server, "#/tasks")
    expect(page.locator(f"tr[data-task='{held}']")).to_have_attribute("data-status", "Running")

    # A row's own action, from the top of the page.
    page.locator("body").focus()
    passed = tab_until(page, f"tr[data-task='{held}'] button[data-action='pause']")
    assert any("New task" in p for p in passed)
    page.keyboard.press("Enter")
    expect(page.locator(f"tr[data-task='{held}']")).to_have_attribute("data-status", "Paused")

    # Selecting with Space, then a bulk action.
    page.on("dialog", lambda dialog: dialog.accept())
    page.locator("#select-page").focus()
    page.keyboard.press("Space")
    expect(page.locator("#bulk-count")).to_have_text("2 selected.")
    tab_until(page, "#bulk-cancel")
    page.keyboard.press("Enter")
    expect(page.locator("#bulk-summary")).to_contain_text("Cancel: 1 of 2 tasks canceled")
    assert status_of(server, held) == "Canceled"

    # A task's view: the log's search, its download, and back to the table by the brand link.
    page.goto(f"{server.url}/tasky/ui#/tasks/{echo}")
    expect(page.locator("#task-logs")).to_contain_text("echo 'x'")
    page.locator("body").focus()
    tab_until(page, "#logs-search")
    page.keyboard.type("echo")
    expect(page.locator("#task-logs mark")).to_have_count(1)
    tab_until(page, "#logs-download")
    with page.expect_download():
        page.keyboard.press("Enter")

    # Statistics: a worker's row is picked with Enter.
    page.goto(f"{server.url}/tasky/ui#/stats/Hold")
    expect(page.locator("#stats-detail")).to_have_attribute("data-worker", "Hold")
    page.locator("body").focus()
    tab_until(page, "#stats-overview tr[data-worker='Echo']")
    page.keyboard.press("Enter")
    expect(page.locator("#stats-detail")).to_have_attribute("data-worker", "Echo")

    # A new chain, built and started without the mouse.
    page.goto(f"{server.url}/tasky/ui#/chains/new")
    page.locator("body").focus()
    tab_until(page, ".step-editor .step-worker")
    page.keyboard.type("Echo")  # a focused list picks the option typed
    expect(page.locator(".step-editor .step-worker")).to_have_value("Echo")
    tab_until(page, ".step-editor .step-config")
    page.keyboard.press("Control+a")
    page.keyboard.type('{"value": "typed"}')
    tab_until(page, "#start-adhoc")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"#/chains/[0-9a-f]{32}$"))
    expect(page.locator("#chain-detail .detail-head .badge")).to_have_text("Completed")
    # The graph's node is a link the keyboard reaches (and shows).
    page.locator("body").focus()
    tab_until(page, "#chain-graph a.chain-node-link")
    page.keyboard.press("Enter")
    expect(page.locator("#task-output pre")).to_contain_text("typed")
