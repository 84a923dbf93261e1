"""The page on a phone (390 px), in a real browser (Debian's chromium, see test_ui_browser): chart
text that does not overlap, and a worker picker that keeps the chosen card and the form's title
in sight."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import ServerProcess
from tests.helpers import wait_sync
from tests.test_ui_browser import WAIT_MS, browser, open_page, submit

__all__ = ["browser"]  # the fixture, imported so pytest finds it here

# Every text of a chart as a box on screen; two that intersect are an overlap.
OVERLAPS = """(svg) => {
  const boxes = [...svg.querySelectorAll("text")].map((t) => {
    const r = t.getBoundingClientRect();
    return { text: t.textContent, left: r.left, right: r.right, top: r.top, bottom: r.bottom };
  });
  const hits = [];
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i], b = boxes[j];
      const across = a.left < b.right - 0.5 && b.left < a.right - 0.5;
      if (across && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5) {
        hits.push([a.text, b.text]);
      }
    }
  }
  const outside = boxes.filter((b) => b.left < svg.getBoundingClientRect().left - 0.5
    || b.right > svg.getBoundingClientRect().right + 0.5).map((b) => b.text);
  return { count: boxes.length, hits, outside };
}"""


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    context.set_default_timeout(WAIT_MS)
    yield context.new_page()
    context.close()


def test_chart_axis_titles_and_ticks_do_not_overlap(phone: Page, server: ServerProcess) -> None:
    # Run times from 1 ms to over a second: many histogram buckets, so many x labels, and a
    # count axis with wide numbers.
    last = ""
    for n in range(150):
        last = submit(server, "Echo", {"value": n})
    for seconds in (0.05, 0.2, 0.6, 1.3):
        last = submit(server, "Sleeper", {"seconds": seconds})
    wait_sync(server.api, last, "Completed", timeout=60)
    for worker in ("Echo", "Sleeper"):
        open_page(phone, server, f"#/stats/{worker}")
        charts = phone.locator("#stats-detail figure.chart svg")
        expect(charts).to_have_count(2)
        for index in range(2):
            found = charts.nth(index).evaluate(OVERLAPS)
            assert found["count"] > 5, found
            assert found["hits"] == [], (worker, index, found["hits"])
            assert found["outside"] == [], (worker, index, found["outside"])


IN_SIGHT = """([card, title]) => {
  const bar = document.querySelector(".topbar").getBoundingClientRect().bottom;
  const c = document.querySelector(card).getBoundingClientRect();
  const t = document.querySelector(title).getBoundingClientRect();
  return {
    card: c.left >= 0 && c.right <= innerWidth && c.bottom > bar && c.top < innerHeight,
    title: t.top >= bar && t.bottom <= innerHeight,
  };
}"""


@pytest.mark.parametrize("width", [390, 1280])
def test_the_worker_picker_keeps_the_chosen_card_and_the_title_in_sight(
    browser: Browser, server: ServerProcess, width: int
) -> None:
    context = browser.new_context(
        viewport={"width": width, "height": 844}, is_mobile=width < 500, has_touch=width < 500
    )
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    try:
        open_page(page, server, "#/workers")
        last = page.locator(".worker-item").last
        name = last.get_attribute("data-worker")
        last.scroll_into_view_if_needed()  # far right on a phone, far down on a desktop
        if width < 500:
            last.tap()
        else:
            last.click()
        expect(page.locator("#task-form")).to_have_attribute("data-worker", name or "")
        page.wait_for_timeout(200)  # any scrolling done
        chosen = f".worker-item[data-worker='{name}']"
        assert page.evaluate(IN_SIGHT, [chosen, "#worker-title"]) == {"card": True, "title": True}
    finally:
        context.close()
