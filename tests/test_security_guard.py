"""The request guard (tasky/api/guard.py): Host, Origin and body type, on the real app and server.

Each attack is sent as a browser (or a DNS-rebinding page) would send it, and each test checks
both the specific refusal and that nothing was created; the matching good request passes.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tasky.api.guard import canonical_origin, host_policy
from tasky.settings import Settings
from tests.conftest import ServerProcess
from tests.helpers import API

JSON = "application/json"
SUBMIT = f"{API}/workers/sleeper"


async def count_tasks(client: httpx.AsyncClient) -> int:
    return len((await client.get(f"{API}/tasks")).json()["Tasks"])


def count_tasks_sync(server: ServerProcess) -> int:
    return len(httpx.get(f"{server.api}/tasks").json()["Tasks"])


# ---- Content-Type: a browser can send these three across origins without a preflight.


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", None],
)
async def test_body_that_is_not_declared_json_is_415(
    client: httpx.AsyncClient, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    r = await client.post(SUBMIT, content=b'{"seconds": 30}', headers=headers)
    assert r.status_code == 415
    assert "Content-Type: application/json" in r.json()["Error"]
    assert await count_tasks(client) == 0


async def test_multipart_form_is_415(client: httpx.AsyncClient) -> None:
    r = await client.post(SUBMIT, files={"seconds": ("x", b"30")})
    assert r.status_code == 415
    r = await client.put(f"{API}/tasks/{'0' * 32}", content=b"{}", headers={"content-type": "x/y"})
    assert r.status_code == 415
    assert await count_tasks(client) == 0


@pytest.mark.parametrize(
    "content_type", [JSON, "application/json; charset=utf-8", "Application/JSON"]
)
async def test_json_bodies_pass(client: httpx.AsyncClient, content_type: str) -> None:
    r = await client.post(
        SUBMIT, content=b'{"seconds": 30}', headers={"content-type": content_type}
    )
    assert r.status_code == 201, r.text


async def test_bodyless_post_needs_no_content_type(client: httpx.AsyncClient) -> None:
    """``curl -X POST .../cancel`` and a submit with the default config keep working."""
    r = await client.post(f"{API}/workers/ifconfig")
    assert r.status_code == 201
    task_id = (await client.post(SUBMIT, json={"seconds": 30})).json()["TaskId"]
    r = await client.post(f"{API}/tasks/{task_id}/cancel")
    assert r.status_code in (200, 202), r.text


# ---- Origin and Sec-Fetch-Site: a page elsewhere may not change anything, body or not.

FOREIGN = [
    {"origin": "http://127.0.0.1:9"},  # another port on the same host: same-site, not same-origin
    {"origin": "http://attacker.example"},
    {"origin": "null"},  # sandboxed frames, file: pages
    {"origin": "https://127.0.0.1"},  # the right host, the wrong scheme
    {"sec-fetch-site": "cross-site"},
    {"sec-fetch-site": "same-site"},
]


@pytest.mark.parametrize("headers", FOREIGN)
async def test_foreign_origin_cannot_submit(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    r = await client.post(SUBMIT, json={"seconds": 30}, headers=headers)
    assert r.status_code == 403
    assert "cross-site request refused" in r.json()["Error"]
    assert await count_tasks(client) == 0


@pytest.mark.parametrize("headers", FOREIGN)
async def test_foreign_origin_cannot_cancel_without_a_body(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    """A no-cors fetch with no body has no Content-Type to refuse: the Origin check covers it."""
    task_id = (await client.post(SUBMIT, json={"seconds": 30})).json()["TaskId"]
    r = await client.post(f"{API}/tasks/{task_id}/cancel", headers=headers)
    assert r.status_code == 403
    status = (await client.get(f"{API}/tasks/{task_id}/status")).json()["Status"]
    assert status in ("Queued", "Running")


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "http://127.0.0.1"},
        {"origin": "http://127.0.0.1:80", "sec-fetch-site": "same-origin"},
        {"origin": "http://localhost", "host": "localhost"},
        {"sec-fetch-site": "none"},  # typed into the address bar / a bookmark
    ],
)
async def test_own_origin_may_submit(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    r = await client.post(SUBMIT, json={"seconds": 30}, headers=headers)
    assert r.status_code == 201, r.text


async def test_reads_are_not_refused_for_an_origin(client: httpx.AsyncClient) -> None:
    """Cross-origin reads are the browser's job (no CORS headers are ever sent)."""
    r = await client.get(f"{API}/workers", headers={"origin": "http://attacker.example"})
    assert r.status_code == 200
    assert "access-control-allow-origin" not in r.headers


# ---- Host: a DNS-rebinding page reaches the server under the attacker's name.


@pytest.mark.parametrize(
    "host", ["attacker.example", "attacker.example:8888", "127.0.0.1.nip.io", "10.0.0.1", "[::2]"]
)
async def test_unknown_host_is_421(client: httpx.AsyncClient, host: str) -> None:
    r = await client.get(f"{API}/workers", headers={"host": host})
    assert r.status_code == 421
    assert "--allowed-host" in r.json()["Error"]
    r = await client.post(SUBMIT, json={"seconds": 30}, headers={"host": host})
    assert r.status_code == 421
    assert await count_tasks(client) == 0


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.0.0.1:8888", "localhost:1234", "LOCALHOST", "[::1]:8888", "[::1]"]
)
async def test_loopback_names_are_accepted(client: httpx.AsyncClient, host: str) -> None:
    assert (await client.get(f"{API}/workers", headers={"host": host})).status_code == 200


@pytest.mark.parametrize("host", ["", "[::1", "localhost:http", "localhost:70000"])
async def test_malformed_host_is_400(client: httpx.AsyncClient, host: str) -> None:
    assert (await client.get(f"{API}/workers", headers={"host": host})).status_code == 400


async def test_two_host_headers_are_400(client: httpx.AsyncClient) -> None:
    headers = [("host", "127.0.0.1"), ("host", "attacker.example")]
    assert (await client.get(f"{API}/workers", headers=headers)).status_code == 400


def test_rebinding_request_to_a_real_server_is_421(server: ServerProcess) -> None:
    """The reproduction of the issue: ``Host: attacker.example`` used to get 200 and a task."""
    port = server.port
    for method, path, body in (
        ("GET", "/workers", None),
        ("GET", "/tasks", None),
        ("POST", "/workers/CopyFile", {"source": "a", "destination": "b"}),
    ):
        r = httpx.request(
            method, server.api + path, json=body, headers={"host": f"attacker.example:{port}"}
        )
        assert r.status_code == 421, (method, path, r.text)
    assert count_tasks_sync(server) == 0
    assert httpx.get(f"http://localhost:{port}/tasky/v1/workers").status_code == 200


def test_the_guard_holds_with_a_token(server_factory: Any) -> None:
    srv: ServerProcess = server_factory("--token", "s3cret")
    auth = {"authorization": "Bearer s3cret"}
    r = httpx.post(
        f"{srv.api}/workers/sleeper",
        json={"seconds": 30},
        headers={**auth, "origin": "http://attacker.example"},
    )
    assert r.status_code == 403
    r = httpx.post(
        f"{srv.api}/workers/sleeper",
        content=b'{"seconds": 30}',
        headers={**auth, "content-type": "text/plain"},
    )
    assert r.status_code == 415
    r = httpx.get(f"{srv.api}/tasks", headers={**auth, "host": "attacker.example"})
    assert r.status_code == 421
    assert httpx.get(f"{srv.api}/tasks", headers=auth).json()["Tasks"] == []
    # Refused before the token is looked at: no hint whether a guessed token was right.
    r = httpx.get(f"{srv.api}/tasks", headers={"host": "attacker.example"})
    assert r.status_code == 421


def test_configured_host_and_origin_are_accepted(server_factory: Any) -> None:
    """Behind a proxy: TASKY_ALLOWED_HOSTS for its names, --allowed-origin for its origin."""
    srv: ServerProcess = server_factory(
        "--allowed-origin",
        "https://tasks.example.com",
        env={"TASKY_ALLOWED_HOSTS": "tasks.example.com,tasky.lan"},
    )
    assert httpx.get(f"{srv.api}/workers", headers={"host": "tasky.lan:81"}).status_code == 200
    proxied = {"host": "tasks.example.com", "origin": "https://tasks.example.com"}
    r = httpx.post(f"{srv.api}/workers/sleeper", json={"seconds": 30}, headers=proxied)
    assert r.status_code == 201, r.text
    r = httpx.post(
        f"{srv.api}/workers/sleeper",
        json={"seconds": 30},
        headers={"host": "tasks.example.com", "origin": "https://other.example.com"},
    )
    assert r.status_code == 403
    r = httpx.get(f"{srv.api}/workers", headers={"host": "other.example.com"})
    assert r.status_code == 421
    assert count_tasks_sync(srv) == 1


# ---- The policy itself.


def test_bind_all_accepts_ip_literals_and_configured_names_only() -> None:
    policy = host_policy(Settings(host="0.0.0.0", token="t", allowed_hosts=["tasky.lan"]))
    for name in ("192.168.1.20", "10.1.2.3", "::1", "127.0.0.1", "localhost", "tasky.lan"):
        assert policy.accepts(name), name
    assert not policy.accepts("attacker.example")
    specific = host_policy(Settings(host="192.168.1.20", token="t"))
    assert specific.accepts("192.168.1.20")
    assert not specific.accepts("10.1.2.3")
    assert not specific.accepts("localhost")  # not reachable that way: bound to one address


def test_origins_are_compared_in_one_spelling() -> None:
    assert canonical_origin("HTTP://LocalHost") == "http://localhost:80"
    assert canonical_origin("https://[0:0::1]:443/") == "https://::1:443"
    for bad in ("null", "", "ftp://x", "http://x/path", "http://x:99999", "http://"):
        assert canonical_origin(bad) is None, bad


def test_a_malformed_allowed_origin_is_refused_at_start(server_factory: Any) -> None:
    srv: ServerProcess = server_factory("--allowed-origin", "tasks.example.com", start=False)
    with pytest.raises(RuntimeError, match="allowed-origin must look like"):
        srv.start()


# ---- The docs page: same security headers as the web page.


@pytest.mark.parametrize(
    "path",
    [
        "/docs",
        "/docs/static/init.js",
        "/docs/static/swagger-ui.css",
        "/docs/static/swagger-ui-bundle.js",
        "/openapi.json",
    ],
)
async def test_docs_page_cannot_be_framed_and_has_a_csp(
    client: httpx.AsyncClient, path: str
) -> None:
    r = await client.get(API + path)
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    assert "script-src 'self'" in csp and "unsafe-eval" not in csp
    assert "default-src 'none'" in csp
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
