"""Chains on the page, in a real browser (Debian's chromium, see test_ui_browser): started from a
definition's parameter form or put together from steps, and drawn as a live graph."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Page, expect

from tasky.store import create_store
from tests.conftest import ServerProcess
from tests.test_ui_browser import WAIT_MS, browser, open_page, page

__all__ = ["browser", "page"]  # the fixtures, imported so pytest finds them here


def fill_step(page: Page, index: int, name: str, worker: str, config: str) -> None:
    editor = page.locator(".step-editor").nth(index)
    editor.locator(".step-name-input").fill(name)
    editor.locator(".step-worker").select_option(worker)
    editor.locator(".step-config").fill(config)


def node(page: Page, step: str) -> object:
    return page.locator(f"#chain-graph g.chain-node[data-step='{step}']")


def test_a_chain_from_steps_drawn_as_a_live_graph(page: Page, server: ServerProcess) -> None:
    open_page(page, server, "#/chains")
    page.get_by_role("link", name="+ New chain").click()
    form = page.locator("#adhoc-chain")
    form.locator("#chain-name").fill("ui-built")
    expect(page.locator(".step-editor .step-config").first).to_have_value(
        re.compile(r'"path": ""')  # the first worker's (Checksum) config, ready to fill in
    )
    fill_step(page, 0, "nap", "Sleeper", '{"seconds": 4}')
    page.locator("#add-group").click()
    fill_step(page, 1, "say", "Echo", '{"value": "${steps.nap.status}"}')
    fill_step(page, 2, "net", "Ifconfig", "{}")
    page.locator(".group-editor .group-name-input").fill("checks")
    page.locator("#start-adhoc").click()
    page.wait_for_url(re.compile(r"#/chains/[0-9a-f]{32}$"))
    chain_id = page.url.rsplit("/", 1)[1]
    spec = httpx.get(f"{server.api}/chains/{chain_id}").json()
    assert spec["Name"] == "ui-built"
    assert [(s["Name"], s["Group"]) for s in spec["Steps"]] == [
        ("nap", None),
        ("say", "checks"),
        ("net", "checks"),
    ]

    graph = page.locator("#chain-graph svg")
    expect(graph).to_have_attribute("data-orient", "across")  # wide enough for stages in a row
    expect(page.locator("#chain-graph g.chain-node")).to_have_count(3)
    expect(page.locator("#chain-graph .group-label")).to_have_text(["checks"])
    nap = node(page, "nap")
    expect(nap).to_have_attribute("data-status", "Running")
    # A running step shows its progress and how long it has run, both moving without a reload.
    status = nap.locator(".node-status")
    expect(status).to_have_text(re.compile(r"^Running · [1-9][0-9.]*% · [1-3]\.\d s$"))
    first = status.text_content()
    expect(status).not_to_have_text(first or "")
    width = float(nap.locator(".node-bar").get_attribute("width") or 0)
    assert width > 0
    expect(node(page, "say")).to_have_attribute("data-status", "Pending")
    # Then the group runs and the chain completes, still without a reload.
    for step in ("nap", "say", "net"):
        expect(node(page, step)).to_have_attribute("data-status", "Completed")
    expect(page.locator("#chain-detail .detail-head .badge")).to_have_text("Completed")
    link = page.locator("#chain-graph a.chain-node-link:has(g[data-step='say'])")
    expect(link).to_have_attribute("href", re.compile(r"#/tasks/[0-9a-f]{32}$"))
    link.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#task-output pre")).to_contain_text('"Completed"')


def test_a_step_the_server_refuses_is_marked(page: Page, server: ServerProcess) -> None:
    open_page(page, server, "#/chains/new")
    fill_step(page, 0, "ok", "Echo", '{"value": 1}')
    page.locator("#add-step").click()
    fill_step(page, 1, "bad", "Sleeper", '{"seconds": -1}')
    page.locator("#start-adhoc").click()
    bad = page.locator(".step-editor").nth(1)
    expect(bad).to_have_class(re.compile("invalid"))
    expect(bad.locator(".step-error")).to_contain_text("greater than or equal to 0")
    expect(page.locator(".step-editor").nth(0)).not_to_have_class(re.compile("invalid"))
    # Not JSON: said on the step before anything is sent.
    fill_step(page, 1, "bad", "Sleeper", "{seconds: 1")
    page.locator("#start-adhoc").click()
    expect(bad.locator(".step-error")).to_contain_text("config is not JSON")
    assert httpx.get(f"{server.api}/chains").json()["Chains"] == []


def test_a_named_definition_started_from_its_parameter_form(
    page: Page, server: ServerProcess
) -> None:
    definition = {
        "description": "Say something, some times.",
        "parameters": {"words": "hi", "loud": False},
        "steps": [{"name": "say", "worker": "Echo", "config": {"value": "${params.words}"}}],
    }
    r = httpx.put(f"{server.api}/chain-definitions/greet", json=definition)
    assert r.status_code == 201, r.text
    open_page(page, server, "#/chains/new")
    expect(page.get_by_role("tab", name="From a definition")).to_have_attribute(
        "aria-selected", "true"
    )
    expect(page.locator("#start-chain")).to_contain_text("Say something, some times.")
    words = page.locator("#field-param-words")
    expect(words).to_have_value("hi")  # the definition's default
    expect(page.locator("#field-param-loud")).to_have_attribute("type", "checkbox")
    words.fill("hello there")
    page.locator("#start-definition").click()
    page.wait_for_url(re.compile(r"#/chains/[0-9a-f]{32}$"))
    expect(page.locator("#chain-detail .detail-head .badge")).to_have_text("Completed")
    expect(page.locator("#chain-detail pre.json").first).to_contain_text("hello there")

    # The other tab, by keyboard.
    page.goto(f"{server.url}/tasky/ui#/chains/new")
    page.get_by_role("tab", name="From a definition").focus()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("tab", name="From steps")).to_be_focused()
    expect(page.locator("#adhoc-chain")).to_be_visible()
    expect(page.locator("#start-chain")).to_be_hidden()


def test_a_wide_chain_turns_downwards_on_a_phone(browser: Browser, server: ServerProcess) -> None:
    steps: list[dict[str, object]] = [
        {"name": f"s{n}", "worker": "Echo", "config": {"value": n}} for n in range(4)
    ]
    pair = [{"name": f"p{n}", "worker": "Echo", "config": {"value": n}} for n in range(2)]
    steps.append({"name": "both", "parallel": pair})
    chain_id = httpx.post(f"{server.api}/chains", json={"steps": steps}).json()["ChainId"]
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    phone.set_default_timeout(WAIT_MS)
    small = phone.new_page()
    try:
        open_page(small, server, f"#/chains/{chain_id}")
        expect(small.locator("#chain-graph svg")).to_have_attribute("data-orient", "down")
        expect(small.locator("#chain-graph g.chain-node")).to_have_count(6)
        assert small.evaluate("document.documentElement.scrollWidth <= 390")
        # The parallel pair side by side, narrowed to fit: nothing to scroll inside the card.
        fits = "(box) => box.scrollWidth <= box.clientWidth"
        assert small.locator("#chain-graph").evaluate(fits)
        box = small.locator("#chain-graph svg").bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    finally:
        phone.close()


def test_a_long_chain_is_summed_up_and_its_steps_paged(page: Page, server: ServerProcess) -> None:
    """2,000 steps: no graph, counts by status instead, and the steps a page at a time; the page
    never asks for the chain whole."""
    steps = [{"name": "hold", "worker": "Hold", "config": {"seconds": 60}}]
    steps += [{"name": f"s{i}", "worker": "Echo", "config": {"value": i}} for i in range(1, 2000)]
    r = httpx.post(f"{server.api}/chains", json={"name": "long", "steps": steps}, timeout=30)
    assert r.status_code == 201, r.text
    chain_id = r.json()["ChainId"]
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    open_page(page, server, f"#/chains/{chain_id}")

    summary = page.locator("#chain-summary")
    expect(summary).to_be_visible()
    expect(summary).to_contain_text("2,000 steps: too many to draw")
    counts = page.locator("#chain-counts .chain-count")
    expect(counts.and_(page.locator("[data-status='Running']"))).to_have_text("Running 1")
    expect(counts.and_(page.locator("[data-status='Pending']"))).to_have_text("Pending 1,999")
    expect(page.locator("#chain-graph")).to_be_hidden()
    expect(page.locator("#chain-graph g.chain-node")).to_have_count(0)

    info = page.locator("#step-page-info")
    items = page.locator("#chain-detail li.chain-step")
    expect(info).to_have_text("Steps 1 to 100 of 2,000")
    expect(items).to_have_count(100)
    expect(items.first).to_have_attribute("data-step", "hold")
    expect(items.first).to_have_attribute("data-status", "Running")
    expect(page.locator("#step-prev")).to_be_disabled()
    page.locator("#step-next").click()
    expect(info).to_have_text("Steps 101 to 200 of 2,000")
    expect(items.first).to_have_attribute("data-step", "s100")
    expect(items.last).to_have_attribute("data-step", "s199")
    for first in range(201, 2000, 100):
        page.locator("#step-next").click()
        expect(info).to_have_text(re.compile(f"^Steps {first:,} to "))
    expect(info).to_have_text("Steps 1,901 to 2,000 of 2,000")
    expect(items.last).to_have_attribute("data-step", "s1999")
    expect(page.locator("#step-next")).to_be_disabled()
    page.locator("#step-prev").click()
    expect(info).to_have_text("Steps 1,801 to 1,900 of 2,000")
    expect(items.first).to_have_attribute("data-step", "s1800")

    # Every read of the chain was bounded: its answer with at most 200 steps, then pages.
    reads = [u for u in asked if f"/chains/{chain_id}" in u]
    assert reads
    for url in reads:
        assert "steps=200" in url or ("/steps?" in url and "limit=100" in url), url
    r = httpx.post(f"{server.api}/chains/{chain_id}/actions", json={"action": "cancel"})
    assert r.status_code in (200, 202), r.text


def test_a_half_pruned_chain_is_shown(page: Page, server: ServerProcess) -> None:
    """Retention takes a long chain over several writes, its tasks first: a chain caught between
    two of them (or after a crash) is still drawn, the steps whose task went as Pending."""
    steps = [{"name": f"s{i}", "worker": "Echo", "config": {"value": i}} for i in range(3)]
    r = httpx.post(f"{server.api}/chains", json={"name": "old", "steps": steps}, timeout=10)
    assert r.status_code == 201, r.text
    chain_id = r.json()["ChainId"]
    wait_for(lambda: httpx.get(f"{server.api}/chains/{chain_id}").json()["Status"] == "Completed")
    server.stop()
    # In a thread of its own: Playwright's sync API keeps an event loop running in this one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _prune_two_rows(server.data_dir / "tasky.db")).result()
    server.start()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    open_page(page, server, f"#/chains/{chain_id}")
    expect(page.locator("#chain-detail .detail-head .badge")).to_have_text("Completed")
    expect(page.locator("#chain-graph g.chain-node")).to_have_count(3)
    statuses = [node(page, f"s{i}").get_attribute("data-status") for i in range(3)]
    assert sorted(s or "" for s in statuses) == ["Completed", "Pending", "Pending"]
    assert errors == []


async def _prune_two_rows(path: Path) -> None:
    store = create_store(f"sqlite:///{path}")
    await store.open()
    try:
        pruned = await store.chains.prune_finished(time.time() + 3600, 2)
        assert (pruned.tasks, pruned.chains) == (2, 0)
    finally:
        await store.close()


def wait_for(check: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "never came true"
        time.sleep(0.05)
