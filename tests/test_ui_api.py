"""What the page stands on, without a browser: its routes and headers, its static files, the
metadata it reads, and the throughput read behind its chart."""

from __future__ import annotations

import asyncio
import itertools
import re
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from tasky.server import build_app
from tasky.settings import Settings
from tasky.states import ACTION_SOURCES
from tasky.ui.routes import STATIC
from tasky.workers.registry import WorkerRegistry


async def test_root_redirects_to_the_page(client: httpx.AsyncClient) -> None:
    r = await client.get("/")
    assert r.status_code == 307
    assert r.headers["location"] == "/tasky/ui"
    page = await client.get("/tasky/ui/")  # trailing slash too
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")


async def test_page_and_static_files_carry_a_strict_policy(client: httpx.AsyncClient) -> None:
    for path in ("/tasky/ui", "/tasky/ui/static/js/app.js", "/tasky/ui/static/app.css"):
        r = await client.get(path)
        assert r.status_code == 200, path
        csp = r.headers["content-security-policy"]
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
        assert directives["default-src"] == "'none'"
        assert directives["script-src"] == "'self'"
        assert directives["style-src"] == "'self'"
        assert directives["connect-src"] == "'self'"
        assert directives["frame-ancestors"] == "'none'"
        assert "unsafe" not in csp
        assert r.headers["x-content-type-options"] == "nosniff"
    js = await client.get("/tasky/ui/static/js/app.js")
    assert js.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    missing = await client.get("/tasky/ui/static/nope.js")
    assert missing.status_code == 404


class _Inline(HTMLParser):
    """Collects what a strict CSP would block: inline scripts, styles and handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.refs: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        for name, _ in attrs:
            if name.startswith("on") or name == "style":
                self.problems.append(f"<{tag} {name}=...>")
        if tag == "style":
            self.problems.append("<style>")
        if tag == "script":
            if not named.get("src"):
                self.problems.append("inline <script>")
            else:
                self.refs.append(str(named["src"]))
        if tag == "link" and named.get("href"):
            self.refs.append(str(named["href"]))


def test_the_page_has_nothing_inline_and_every_file_it_names_exists() -> None:
    parser = _Inline()
    parser.feed((STATIC / "index.html").read_text())
    assert parser.problems == []
    assert parser.refs
    for ref in parser.refs:
        assert ref.startswith("/tasky/ui/static/")
        assert (STATIC / ref.removeprefix("/tasky/ui/static/")).is_file(), ref


def test_scripts_never_write_html() -> None:
    """Untrusted text must never be parsed as HTML: no innerHTML and friends in any module."""
    pattern = re.compile(
        r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function"
    )
    for path in sorted((STATIC / "js").rglob("*.js")):
        assert not pattern.search(path.read_text()), path
    imports = re.compile(r'from "(\.[^"]+)"')
    for path in sorted((STATIC / "js").rglob("*.js")):
        for ref in imports.findall(path.read_text()):
            assert (path.parent / ref).resolve().is_file(), f"{path}: {ref}"


def test_static_files_ship_in_the_package() -> None:
    """pyproject's package data globs (ui/static/*, ui/static/**/*) cover every file."""
    text = (Path(__file__).parent.parent / "pyproject.toml").read_text()
    assert '"ui/static/*"' in text and '"ui/static/**/*"' in text
    assert all(p.is_file() for p in STATIC.rglob("*") if p.suffix)


async def test_meta_mirrors_the_state_machine(client: httpx.AsyncClient) -> None:
    meta = (await client.get("/tasky/ui/meta.json")).json()
    assert meta["ActionSources"] == {
        action: sorted(s.value for s in sources) for action, sources in ACTION_SOURCES.items()
    }
    assert meta["Statuses"] == ["Queued", "Running", "Paused", "Completed", "Failed", "Canceled"]
    assert meta["Chains"] is True  # the chains routes are registered


async def test_with_a_token_the_page_loads_and_the_api_does_not(
    settings: Settings, registry: WorkerRegistry
) -> None:
    settings.token = "s3cret"
    app = build_app(settings, registry=registry)
    starlette = app.starlette
    async with starlette.router.lifespan_context(starlette):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            assert (await client.get("/tasky/ui")).status_code == 200
            assert (await client.get("/tasky/ui/static/js/api.js")).status_code == 200
            assert (await client.get("/tasky/v1/workers")).status_code == 401
            assert (await client.get("/tasky/v1/events")).status_code == 401
            ok = await client.get("/tasky/v1/workers", headers={"Authorization": "Bearer s3cret"})
            assert ok.status_code == 200


async def _wait_finished(client: httpx.AsyncClient, task_id: str) -> str:
    for _ in range(500):
        status: str = (await client.get(f"/tasky/v1/tasks/{task_id}/status")).json()["Status"]
        if status in ("Completed", "Failed", "Canceled"):
            return status
        await asyncio.sleep(0.01)
    raise AssertionError(f"task {task_id} did not finish")


async def test_throughput_counts_ended_attempts_per_minute(client: httpx.AsyncClient) -> None:
    ids = [
        (await client.post("/tasky/v1/workers/echo", json={"value": n})).json()["TaskId"]
        for n in range(5)
    ]
    flaky = (await client.post("/tasky/v1/workers/flaky", json={})).json()["TaskId"]
    for task_id in [*ids, flaky]:
        await _wait_finished(client, task_id)
    r = await client.get("/tasky/v1/workers/echo/throughput", params={"minutes": 3})
    assert r.status_code == 200
    body = r.json()
    assert body["Worker"] == "Echo" and body["IntervalSeconds"] == 60
    minutes = body["Minutes"]
    assert len(minutes) == 3  # every minute listed, zeros included
    assert [m["Time"] % 60 for m in minutes] == [0, 0, 0]
    assert [b["Time"] - a["Time"] for a, b in itertools.pairwise(minutes)] == [60, 60]
    assert sum(m["Completed"] for m in minutes) == 5
    assert sum(m["Failed"] + m["Canceled"] for m in minutes) == 0
    flaky_minutes = (await client.get("/tasky/v1/workers/Flaky/throughput")).json()["Minutes"]
    assert len(flaky_minutes) == 60
    assert sum(m["Failed"] for m in flaky_minutes) == 1


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/tasky/v1/workers/echo/throughput?minutes=0", 400),
        ("/tasky/v1/workers/echo/throughput?minutes=1441", 400),
        ("/tasky/v1/workers/echo/throughput?minutes=ten", 400),
        ("/tasky/v1/workers/nobody/throughput", 404),
    ],
)
async def test_throughput_rejects_bad_input(
    client: httpx.AsyncClient, path: str, code: int
) -> None:
    r = await client.get(path)
    assert r.status_code == code
    assert r.json()["Error"]


async def test_events_and_throughput_are_in_the_openapi_document(
    client: httpx.AsyncClient,
) -> None:
    doc = (await client.get("/tasky/v1/openapi.json")).json()
    events = doc["paths"]["/tasky/v1/events"]["get"]
    assert {p["name"] for p in events["parameters"]} >= {"task", "worker", "chain", "type"}
    assert "/tasky/v1/workers/{name}/throughput" in doc["paths"]
