"""HTTPCheck is no SSRF tool or port scanner: the guarded client refuses internal targets.

The attacks run against a real server process; the targets are HTTP servers of this test on
loopback addresses (127.0.0.1 refused by default; 127.0.0.2 allowed by --outbound-allow).
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpcore
import httpx
import pytest

from tasky.net import outbound
from tasky.net.addresses import OutboundPolicy, refusal
from tasky.net.outbound import OutboundRefused, async_client
from tasky.redact import redact_url
from tests.conftest import ServerProcess, free_port
from tests.helpers import wait_sync

REFUSED = "OutboundRefused: refused by policy: "
SECRET = "s3cret-Passw0rd"


@dataclass
class Target:
    """An HTTP server that counts requests; ``/go?to=URL`` and ``/login`` redirect, the rest is
    ok."""

    host: str
    hits: list[str] = field(default_factory=list)
    port: int = 0

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"


def serve(host: str) -> Iterator[Target]:
    target = Target(host)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            target.hits.append(self.path)
            to = parse_qs(urlsplit(self.path).query).get("to")
            if self.path == "/login":  # a redirect whose URL carries credentials
                to = [f"http://bob:{SECRET}@{host}:{target.port}/in"]
            self.send_response(302 if to else 200)
            if to:
                self.send_header("Location", to[0])
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((host, 0), Handler)
    target.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield target
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def internal() -> Iterator[Target]:
    """What an attacker wants to reach: a service on the server's loopback."""
    yield from serve("127.0.0.1")


@pytest.fixture
def allowed() -> Iterator[Target]:
    """A service the operator allowed (--outbound-allow 127.0.0.2/32)."""
    yield from serve("127.0.0.2")


def run(srv: ServerProcess, config: dict[str, Any]) -> str:
    r = httpx.post(f"{srv.api}/workers/HTTPCheck", json=config)
    assert r.status_code == 201, r.text
    task_id: str = r.json()["TaskId"]
    return task_id


def finished(srv: ServerProcess, task_id: str) -> dict[str, Any]:
    wait_sync(srv.api, task_id, "Completed", "Failed", timeout=30)
    body: dict[str, Any] = httpx.get(f"{srv.api}/tasks/{task_id}").json()
    return body


def spellings(port: int) -> list[str]:
    """Ways to write an internal address; getaddrinfo turns the numeric ones into 127.0.0.1."""
    hosts = [
        "127.0.0.1",
        "localhost",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "2130706433",
        "0177.0.0.1",
        "0x7f000001",
        "127.1",
        "[::127.0.0.1]",
        "[64:ff9b::7f00:1]",
        "[2002:7f00:1::]",
        "169.254.169.254",
        "0.0.0.0",
        "10.0.0.1",
        "100.64.0.1",
        "[fd00::1]",
        "[fe80::1]",
        "224.0.0.1",
        "255.255.255.255",
    ]
    return [f"http://{host}:{port}/latest/meta-data/" for host in hosts]


@pytest.fixture
def guarded(server_factory: Any) -> ServerProcess:
    srv: ServerProcess = server_factory(
        "--workers", "tasky.workers.examples", env={"TASKY_OUTBOUND_ALLOW": "127.0.0.2/32"}
    )
    return srv


def test_internal_addresses_refused_alike_open_or_closed(
    guarded: ServerProcess, internal: Target
) -> None:
    closed = free_port()
    tasks = {
        (url, state): run(guarded, {"url": url, "timeout": 5})
        for state, port in (("open", internal.port), ("closed", closed))
        for url in spellings(port)
    }
    errors: dict[tuple[str, str], str] = {}
    for key, task_id in tasks.items():
        body = finished(guarded, task_id)
        assert body["Status"] == "Failed", (key, body)
        assert body["Error"].startswith(REFUSED), (key, body["Error"])
        errors[key] = body["Error"]
    for url in spellings(0):
        open_url, closed_url = (url.replace(":0/", f":{p}/") for p in (internal.port, closed))
        # Nothing tells an open port from a closed one: the same text, and no port in it.
        assert errors[(open_url, "open")] == errors[(closed_url, "closed")]
        assert str(internal.port) not in errors[(open_url, "open")]
    assert internal.hits == []


def test_redirects_are_checked_on_every_hop(
    guarded: ServerProcess, internal: Target, allowed: Target
) -> None:
    ok = finished(guarded, run(guarded, {"url": allowed.url("/health")}))
    assert ok["Status"] == "Completed", ok
    assert ok["Output"]["status"] == 200

    to_allowed = allowed.url("/go?to=" + allowed.url("/final"))
    hop = finished(guarded, run(guarded, {"url": to_allowed, "follow_redirects": True}))
    assert hop["Status"] == "Completed", hop
    assert hop["Output"]["final_url"] == allowed.url("/final")

    closed = free_port()
    texts = []
    for target in (
        internal.url("/"),
        f"http://127.0.0.1:{closed}/",
        f"http://localhost:{internal.port}/",
        f"http://[::1]:{closed}/",
        f"http://2130706433:{internal.port}/",
        "ftp://127.0.0.2/",
    ):
        # Encoded as a browser would: HttpUrl's strict syntax refuses a raw "[" in a query.
        url = allowed.url("/go?to=" + quote(target, safe=""))
        body = finished(guarded, run(guarded, {"url": url, "follow_redirects": True}))
        assert body["Status"] == "Failed", (target, body)
        assert body["Error"].startswith(REFUSED), (target, body["Error"])
        texts.append(body["Error"])
    assert texts[0] == texts[1]  # open and closed alike
    assert internal.hits == []


def test_allowed_target_that_does_not_answer(guarded: ServerProcess) -> None:
    body = finished(guarded, run(guarded, {"url": f"http://127.0.0.2:{free_port()}/"}))
    assert body["Status"] == "Completed", body
    assert body["Output"]["error"] == "could not connect to 127.0.0.2"


def test_allow_list_must_be_valid(server_factory: Any) -> None:
    srv: ServerProcess = server_factory("--outbound-allow", "not a host!", start=False)
    with pytest.raises(RuntimeError, match="neither a network"):
        srv.start()


# -- credentials in URLs ------------------------------------------------------------------------


def events_of(srv: ServerProcess, task_id: str) -> str:
    """The task's events from the start of the run (replayed), until the stream goes quiet."""
    params = {"task": task_id, "last_event_id": "0", "heartbeat": "0.3"}
    seen: list[str] = []
    deadline = time.monotonic() + 10
    with httpx.stream("GET", f"{srv.api}/events", params=params, timeout=10) as r:
        for line in r.iter_lines():
            seen.append(line)
            if line.startswith(": keep-alive") or time.monotonic() > deadline:
                break
    return "\n".join(seen)


def test_url_credentials_never_shown(server_factory: Any, internal: Target) -> None:
    srv: ServerProcess = server_factory(
        "--workers", "tasky.workers.examples", "--outbound-allow", "127.0.0.1"
    )
    closed = free_port()
    cases = [
        ({"url": f"http://alice:{SECRET}@127.0.0.1:{internal.port}/x"}, "Completed"),
        ({"url": f"http://alice:{SECRET}@127.0.0.1:{closed}/", "expect_status": 200}, "Failed"),
        ({"url": f"http://alice:{SECRET}@10.0.0.1/"}, "Failed"),  # refused by policy
        ({"url": internal.url("/login"), "follow_redirects": True}, "Completed"),
    ]
    for config, status in cases:
        task_id = run(srv, config)
        body = finished(srv, task_id)
        assert body["Status"] == status, body
        shown = {k: v for k, v in body.items() if k != "Config"}  # the input, echoed as given
        logs = httpx.get(f"{srv.api}/tasks/{task_id}/logs").text
        assert "GET http://" in logs
        for text in (str(shown), logs, events_of(srv, task_id)):
            assert SECRET not in text and "alice" not in text and "bob" not in text
    first = finished(srv, run(srv, cases[0][0]))
    assert first["Output"]["url"] == f"http://***@127.0.0.1:{internal.port}/x"
    login = finished(srv, run(srv, cases[-1][0]))
    assert login["Output"]["final_url"] == f"http://***@127.0.0.1:{internal.port}/in"
    srv.stop()
    assert SECRET not in srv.read_log()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://user:pass@host/x?q=1", "http://***@host/x?q=1"),
        ("https://token@host:8443", "https://***@host:8443"),
        ("http://u:p@[::1]:80/", "http://***@[::1]:80/"),
        ("http://host/a@b", "http://host/a@b"),
        ("http://a:b@c@host/", "http://***@host/"),
        ("http://plain.example/", "http://plain.example/"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


# -- the classifier ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("100.127.255.255", "carrier-grade NAT"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("255.255.255.255", "broadcast"),
        ("240.0.0.1", "reserved"),
        ("fc00::1", "unique local"),
        ("fd12:3456::1", "unique local"),
        ("::ffff:127.0.0.1", "IPv4-mapped"),
        ("::ffff:8.8.8.8", "IPv4-mapped"),
        ("::127.0.0.1", "IPv4-compatible"),
        ("::10.0.0.1", "IPv4-compatible"),
        ("64:ff9b::a00:1", "NAT64 address of a private"),
        ("64:ff9b::7f00:1", "NAT64 address of a loopback"),
        ("64:ff9b:1::1", "local-use NAT64"),
        ("2002:a00:1::", "6to4 address of a private"),
        ("2002:7f00:1::1", "6to4 address of a loopback"),
        ("2001::1", "Teredo"),
        ("192.0.2.1", "documentation"),
        ("2001:db8::1", "documentation"),
        ("fec0::1", "site-local"),
        ("198.18.0.1", "benchmarking"),
    ],
)
def test_refused_addresses(address: str, why: str) -> None:
    reason = refusal(ipaddress.ip_address(address))
    assert reason is not None and why in reason


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "2606:4700::1111",
     "64:ff9b::808:808", "2002:808:808::1", "192.169.0.1"],
)  # fmt: skip
def test_public_addresses(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


def test_policy_entries() -> None:
    policy = OutboundPolicy.parse(["10.1.0.0/16", "127.0.0.2", "[::1]", "Intranet.Example."])
    assert policy.refusal("x", ipaddress.ip_address("10.1.2.3")) is None
    assert policy.refusal("x", ipaddress.ip_address("10.2.0.1")) == "a private address"
    assert policy.refusal("x", ipaddress.ip_address("::1")) is None
    assert policy.refusal("intranet.example", ipaddress.ip_address("192.168.0.9")) is None
    assert OutboundPolicy.parse(policy.entries()) == policy
    for bad in ("http://x", "a b", "10.0.0.0/33", "1.2.3.4.5"):
        with pytest.raises(ValueError, match="neither a network"):
            OutboundPolicy.parse([bad])


# -- the check runs where the connection is made ---------------------------------------------------
class _RecordingBackend(httpcore.AsyncNetworkBackend):
    """Stands for the network: records where it was asked to connect, then fails."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def connect_tcp(self, host: str, port: int, *args: Any, **kw: Any) -> Any:
        self.asked.append(host)
        raise httpcore.ConnectError("unreachable")


async def test_connects_to_the_address_it_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """A name that rebinds to loopback after a first, public answer is refused on the next connect,
    and the connection goes to the checked address, never to a second resolution of the name."""
    answers = iter(["93.184.216.34", "127.0.0.1"])

    async def resolve(host: str, port: int, **kw: Any) -> list[Any]:
        return [(2, 1, 6, "", (next(answers), port))]

    monkeypatch.setattr(outbound.anyio, "getaddrinfo", resolve)
    network = _RecordingBackend()
    backend = outbound.GuardedAsyncBackend(OutboundPolicy(), network)
    with pytest.raises(httpcore.ConnectError):
        await backend.connect_tcp("rebind.example", 80, timeout=1)
    assert network.asked == ["93.184.216.34"]
    with pytest.raises(OutboundRefused, match=r"rebind\.example resolves to a loopback address"):
        await backend.connect_tcp("rebind.example", 80, timeout=1)
    assert network.asked == ["93.184.216.34"]


async def test_client_refuses_before_any_connection(internal: Target) -> None:
    async with async_client(timeout=5) as client:
        for url in (internal.url("/"), f"http://localhost:{internal.port}/"):
            with pytest.raises(OutboundRefused):
                await client.get(url)
    with outbound.client(timeout=5) as sync_client, pytest.raises(OutboundRefused):
        sync_client.get(f"http://localhost:{internal.port}/")
    assert internal.hits == []
    allowed = OutboundPolicy.parse(["127.0.0.1"])
    async with async_client(allowed, timeout=5) as client:
        assert (await client.get(internal.url("/"))).status_code == 200
    assert internal.hits == ["/"]
