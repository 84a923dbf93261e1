"""Browser-borne attacks, in a real browser (Debian's chromium through Playwright).

An attacker page is served from a second loopback origin (its own small HTTP server) and does
what any web page the user opens can do to a Tasky server on 127.0.0.1: ``no-cors`` fetches
and form posts. A DNS-rebinding page is played by mapping ``attacker.example`` to 127.0.0.1 in
the browser's resolver. Tasky's own page, from its own origin, must still work.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.conftest import ServerProcess, free_port
from tests.test_ui_browser import ARGS, CHROMIUM, WAIT_MS

ATTACKER_NAME = "attacker.example"
REFUSED = "cross-site request refused"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # The rule plays a DNS-rebinding attacker's name resolving to this machine's loopback.
    args = [*ARGS, "--no-proxy-server", f"--host-resolver-rules=MAP {ATTACKER_NAME} 127.0.0.1"]
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=args)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    context.set_default_timeout(WAIT_MS)
    yield context.new_page()
    context.close()


class _AttackerPage(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<!doctype html><title>cute cats</title><p>nothing to see here</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def attacker() -> Iterator[str]:
    """The origin of a web page elsewhere (another loopback port: same-site, not same-origin)."""
    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), _AttackerPage)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def tasks_of(server: ServerProcess) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = httpx.get(f"{server.api}/tasks").json()["Tasks"]
    return tasks


NO_CORS_FETCHES = """async ([submit, cancel]) => {
  const body = JSON.stringify({seconds: 30});
  const sent = [
    fetch(submit, {method: "POST", mode: "no-cors", body}),
    fetch(submit, {method: "POST", mode: "no-cors", body, headers: {"Content-Type": "text/plain"}}),
    fetch(submit, {method: "POST", mode: "no-cors"}),
    fetch(cancel, {method: "POST", mode: "no-cors"}),
    fetch(cancel, {method: "POST", mode: "no-cors", credentials: "include"}),
  ];
  // Opaque answers: the page cannot read them, but each request did reach the server.
  return (await Promise.all(sent)).map((r) => r.type);
}"""

FORM_POST = """([action, enctype, name, value]) => {
  const sink = document.createElement("iframe");
  sink.name = "sink";
  document.body.append(sink);
  const form = document.createElement("form");
  Object.assign(form, {method: "POST", action, enctype, target: "sink"});
  const input = document.createElement("input");
  Object.assign(input, {name, value});
  form.append(input);
  document.body.append(form);
  form.submit();
}"""


def test_no_cors_fetches_from_another_page_create_and_cancel_nothing(
    page: Page, server: ServerProcess, attacker: str
) -> None:
    victim = httpx.post(f"{server.api}/workers/sleeper", json={"seconds": 30}).json()["TaskId"]
    page.goto(attacker)
    kinds = page.evaluate(
        NO_CORS_FETCHES,
        [f"{server.api}/workers/Sleeper", f"{server.api}/tasks/{victim}/cancel"],
    )
    assert kinds == ["opaque"] * 5
    tasks = tasks_of(server)
    assert [t["TaskId"] for t in tasks] == [victim]
    assert tasks[0]["Status"] in ("Queued", "Running")


@pytest.mark.parametrize(
    ("enctype", "name", "value"),
    [
        # The classic JSON-in-a-text/plain-form trick: the body reads {"seconds": 30, "x": "="}.
        ("text/plain", '{"seconds": 30, "x": "', '"}'),
        ("application/x-www-form-urlencoded", "seconds", "30"),
        ("multipart/form-data", "seconds", "30"),
    ],
)
def test_form_posts_from_another_page_create_nothing(
    page: Page, server: ServerProcess, attacker: str, enctype: str, name: str, value: str
) -> None:
    page.goto(attacker)
    submit = f"{server.api}/workers/Sleeper"
    with page.expect_response(submit) as answer:
        page.evaluate(FORM_POST, [submit, enctype, name, value])
    # The answer the browser got (Playwright may read it; the attacker's page may not).
    assert answer.value.status == 403
    assert REFUSED in answer.value.text()
    assert tasks_of(server) == []


def test_rebinding_page_gets_421(page: Page, server: ServerProcess) -> None:
    """The attacker's name now resolves to 127.0.0.1: the server must not answer as itself."""
    response = page.goto(f"http://{ATTACKER_NAME}:{server.port}/tasky/ui")
    assert response is not None and response.status == 421
    created = page.evaluate(
        """async (url) => (await fetch(url, {method: "POST",
            headers: {"Content-Type": "application/json"}, body: "{}"})).status""",
        f"http://{ATTACKER_NAME}:{server.port}/tasky/v1/workers/Sleeper",
    )
    assert created == 421
    assert tasks_of(server) == []


def test_tasky_own_page_still_changes_things(page: Page, server: ServerProcess) -> None:
    """Same-origin requests carry an Origin too: the server's own must pass, by IP or name."""
    for base in (server.url, f"http://localhost:{server.port}"):
        page.goto(f"{base}/tasky/ui")
        answer = page.evaluate(
            """async () => {
              const r = await fetch("/tasky/v1/workers/Sleeper", {method: "POST",
                headers: {"Content-Type": "application/json"}, body: '{"seconds": 30}'});
              const task = await r.json();
              const c = await fetch(`/tasky/v1/tasks/${task.TaskId}/cancel`, {method: "POST"});
              return [r.status, c.status];
            }"""
        )
        assert answer == [201, 200], base
    assert [t["Status"] for t in tasks_of(server)] == ["Canceled", "Canceled"]


def test_docs_page_renders_under_its_csp(page: Page, server: ServerProcess) -> None:
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security" in m.text else None)
    page.goto(f"{server.api}/docs")
    # Drawn by the bundle's script, after init.js fetched openapi.json: both ran under the CSP.
    page.locator("#swagger-ui .swagger-ui svg.svg-assets").wait_for(state="attached")
    page.wait_for_load_state("networkidle")
    assert refused == []


def test_pages_cannot_be_framed_by_another_site(
    page: Page, server: ServerProcess, attacker: str
) -> None:
    page.goto(attacker)
    for path in ("/tasky/v1/docs", "/tasky/ui"):
        with page.expect_response(server.url + path) as answer:
            page.evaluate(
                """(src) => { const f = document.createElement("iframe");
                   f.src = src; document.body.append(f); }""",
                server.url + path,
            )
        assert answer.value.status == 200  # served, but the browser must not show it framed
        frame = page.locator("iframe").last.element_handle().content_frame()
        assert frame is not None
        frame.wait_for_load_state()
        assert frame.url != server.url + path  # Chromium shows its error page instead
        assert "swagger-ui" not in frame.content() and 'id="live"' not in frame.content()
