"""/tasky/v1/docs in a real browser: the OpenAPI 3.1 document renders, every operation listed.

Swagger UI 4 answered this document with "Unable to render this definition" while the page
itself loaded with 200; only a browser shows the difference.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tasky.api.docs_page import swagger_ui_version
from tests.conftest import ServerProcess
from tests.test_ui_browser import ARGS, CHROMIUM, WAIT_MS


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
    yield context.new_page()
    context.close()


def _operations(server: ServerProcess) -> list[tuple[str, str]]:
    document: dict[str, Any] = httpx.get(f"{server.api}/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    return [
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    ]


def test_the_bundled_swagger_ui_reads_openapi_3_1() -> None:
    major = int(re.match(r"v?(\d+)\.", swagger_ui_version()).group(1))  # type: ignore[union-attr]
    assert major >= 5


def test_docs_list_every_operation_of_the_document(page: Page, server: ServerProcess) -> None:
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(f"{server.api}/docs")
    blocks = page.locator("#swagger-ui .opblock")
    expected = _operations(server)
    expect(blocks).to_have_count(len(expected))
    shown = {
        (
            block.locator(".opblock-summary-method").inner_text().strip(),
            block.locator(".opblock-summary-path").get_attribute("data-path"),
        )
        for block in blocks.all()
    }
    assert shown == set(expected)
    expect(page.locator("#swagger-ui")).not_to_contain_text("Unable to render")
    expect(page.locator("#swagger-ui .info .title")).to_contain_text("Tasky")
    assert problems == []


def test_docs_try_it_out_calls_this_server(page: Page, server: ServerProcess) -> None:
    """Under the page's CSP (connect-src 'self') the docs can still run a request."""
    page.goto(f"{server.api}/docs")
    block = page.locator("#operations-workers-get_tasky_v1_workers")
    block.locator(".opblock-summary").click()
    block.get_by_role("button", name="Try it out").click()
    block.get_by_role("button", name="Execute").click()
    status = block.locator(".live-responses-table .response .response-col_status").first
    expect(status).to_have_text("200")
    expect(block.locator(".live-responses-table")).to_contain_text("Sleeper")
