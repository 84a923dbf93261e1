"""The clients' transports against real servers: the blocking client's keep-alive HTTP/1.1
transport (tasky.client._http1), the asyncio client over aiohttp, TLS and environment proxies."""

from __future__ import annotations

import asyncio
import gc
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import trustme

from tasky import AsyncClient, Client
from tasky.client import NotFound, ServerUnreachable, TaskStatus
from tasky.client._calls import dumps, environment_proxy
from tasky.client._http1 import Http1Transport
from tasky.states import Status
from tests.client_server import WORKER_ARGS, shared_server
from tests.conftest import ServerProcess, free_port
from tests.raw_http import ForwardProxy, SocketServer, canned, read_request
from tests.test_security_tls import TlsServer

__all__ = ["shared_server"]  # the fixture, imported so pytest finds it here


async def test_async_wait_survives_a_server_restart(server_factory: object) -> None:
    make = server_factory
    first: ServerProcess = make(*WORKER_ARGS)  # type: ignore[operator]
    async with AsyncClient(first.url, reconnect_grace=60) as tasky:
        task_id = await tasky.submit("Sleeper", {"seconds": 2})
        seen: list[TaskStatus] = []

        async def wait() -> TaskStatus:
            async for status in tasky.watch(task_id, timeout=120):
                seen.append(status)
            return seen[-1]

        waiting = asyncio.create_task(wait())
        deadline = time.monotonic() + 30
        while not any(s.status is Status.RUNNING for s in seen):
            assert time.monotonic() < deadline and not waiting.done()
            await asyncio.sleep(0.05)
        await asyncio.to_thread(first.kill)
        second: ServerProcess = make(*WORKER_ARGS, data_dir=first.data_dir, start=False)  # type: ignore[operator]
        second.port = first.port
        await asyncio.to_thread(second.start)
        final = await asyncio.wait_for(waiting, timeout=90)
        assert final.status is Status.COMPLETED
        assert (await tasky.get(task_id)).attempt == 2


async def test_async_server_gone_while_waiting(server_factory: object) -> None:
    server: ServerProcess = server_factory(*WORKER_ARGS)  # type: ignore[operator]
    async with AsyncClient(server.url, reconnect_grace=1.0) as tasky:
        task_id = await tasky.submit("Hold", {"seconds": 60})
        waiting = asyncio.create_task(tasky.wait(task_id, 120))
        await asyncio.sleep(0.5)  # let it subscribe; the test holds either way
        await asyncio.to_thread(server.kill)
        with pytest.raises(ServerUnreachable) as exc:
            await asyncio.wait_for(waiting, timeout=60)
    assert exc.value.url == server.api


# -- the blocking client's keep-alive transport --------------------------------------------------
class CountingTransport(Http1Transport):
    """The real transport, noting how many connections it opened."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.opened = 0

    def _open(self, url: httpx.URL, sni: str | None, timeout: float | None) -> Any:
        self.opened += 1
        return super()._open(url, sni, timeout)


def test_one_connection_carries_call_after_call(shared_server: ServerProcess) -> None:
    transport = CountingTransport()
    with Client(shared_server.url, transport=transport) as tasky:
        ids = [tasky.submit("Echo", {"value": n}) for n in range(20)]
        assert len(set(ids)) == 20
        assert [w.name for w in tasky.workers()]
        assert tasky.wait(ids[-1], timeout=30).status is Status.COMPLETED
    assert transport.opened <= 2  # the calls share one; wait's event stream may hold another


def test_the_default_transport_is_the_keep_alive_one(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    with Client("http://127.0.0.1:1") as tasky:
        assert isinstance(tasky._transport, Http1Transport)


def test_a_connection_closed_by_the_server_is_not_reused(server_factory: object) -> None:
    server: ServerProcess = server_factory(*WORKER_ARGS, "--keep-alive-timeout", "0.2")  # type: ignore[operator]
    transport = CountingTransport()
    with Client(server.url, transport=transport) as tasky:
        tasky.submit("Echo", {"value": 1})
        time.sleep(1.0)  # the server has closed the idle connection by now
        tasky.submit("Echo", {"value": 2})
    assert transport.opened == 2


def test_idle_connections_expire_before_the_server_drops_them() -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]"
    with SocketServer(canned(answer, answer)) as server:
        with Client(server.url, transport=Http1Transport(keepalive_expiry=0.2)) as tasky:
            assert tasky.workers() == []
            time.sleep(0.4)
            assert tasky.workers() == []
        assert server.connections == 2


def test_answers_framed_by_chunks_or_by_closing() -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"1\r\n[\r\n1\r\n]\r\n0\r\n\r\n"
    )
    until_close = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n[]"
    )
    with SocketServer(canned(chunked, until_close, close=True)) as server:
        with Client(server.url) as tasky:
            assert tasky.workers() == []  # chunked, kept alive
            assert tasky.workers() == []  # read until the server closed
            assert server.connections == 1
            assert tasky.workers() == []  # a new connection: the closed one is not reused
        assert server.connections == 2


def test_a_server_that_hangs_up_or_stays_silent() -> None:
    def hang_up(conn: socket.socket) -> None:
        read_request(conn)

    with (
        SocketServer(hang_up) as server,
        Client(server.url) as tasky,
        pytest.raises(ServerUnreachable, match="without sending a response"),
    ):
        tasky.workers()

    def silent(conn: socket.socket) -> None:
        read_request(conn)
        time.sleep(2)

    with SocketServer(silent) as server, Client(server.url, timeout=0.3) as tasky:
        started = time.monotonic()
        with pytest.raises(ServerUnreachable, match="timed out"):
            tasky.workers()
        assert time.monotonic() - started < 1.5


def test_nothing_listening() -> None:
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        port = spare.getsockname()[1]
    with Client(f"http://127.0.0.1:{port}") as tasky, pytest.raises(ServerUnreachable) as exc:
        tasky.workers()
    assert exc.value.url == f"http://127.0.0.1:{port}/tasky/v1"


def test_threads_share_one_client(shared_server: ServerProcess) -> None:
    transport = CountingTransport()
    with Client(shared_server.url, transport=transport) as tasky:
        with ThreadPoolExecutor(8) as pool:
            batches = list(
                pool.map(
                    lambda n: [tasky.submit("Echo", {"value": n}) for _ in range(10)], range(8)
                )
            )
        ids = [task_id for batch in batches for task_id in batch]
        assert len(set(ids)) == 80
        assert all(tasky.get(task_id).worker == "Echo" for task_id in ids[::10])
    assert transport.opened <= 8


# -- TLS and proxies -----------------------------------------------------------------------------
@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def https_server(tmp_path: Path, ca: trustme.CA) -> Iterator[TlsServer]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    issued = ca.issue_cert("127.0.0.1")
    issued.private_key_pem.write_to_path(str(key))
    issued.cert_chain_pems[0].write_to_path(str(cert))
    trust = ssl.create_default_context()
    ca.configure_trust(trust)
    args = [*WORKER_ARGS, "--tls-cert", str(cert), "--tls-key", str(key)]
    server = TlsServer(tmp_path / "data", free_port(), args, trust=trust)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.mark.server
def test_https_with_the_trust_of_ssl_cert_file(
    https_server: TlsServer, ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"https://127.0.0.1:{https_server.port}"
    with Client(url) as tasky, pytest.raises(ServerUnreachable, match="CERTIFICATE"):
        tasky.workers()  # the made-up authority is not trusted yet
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    with Client(url) as tasky:
        task_id = tasky.submit("Echo", {"value": "over tls"})
        assert tasky.wait(task_id, timeout=30).status is Status.COMPLETED  # the event stream too

    async def over_asyncio() -> None:
        async with AsyncClient(url) as atasky:
            task_id = await atasky.submit("Echo", {"value": "over tls"})
            # wait() closes its event stream before the stream's end: a TLS connection closed
            # early, whose socket must not outlive the client.
            assert (await atasky.wait(task_id, timeout=30)).status is Status.COMPLETED

    asyncio.run(over_asyncio())
    gc.collect()
    left = [
        c for c in psutil.Process().net_connections() if c.raddr and c.raddr[1] == https_server.port
    ]
    assert left == []


def test_environment_proxies_are_honoured(
    shared_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        assert environment_proxy("http://tasks.example:8888") == proxy.url
        assert environment_proxy("https://tasks.example:8888") is None
        with Client(shared_server.url) as tasky:
            task_id = tasky.submit("Echo", {"value": "proxied"})
        assert f"{shared_server.api}/workers/Echo" in proxy.carried

        async def through_the_proxy() -> None:
            async with AsyncClient(shared_server.url) as atasky:
                assert (await atasky.status(task_id)).task_id == task_id

        asyncio.run(through_the_proxy())
        assert f"{shared_server.api}/tasks/{task_id}/status" in proxy.carried
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        assert environment_proxy(shared_server.url) is None
        carried = len(proxy.carried)
        with Client(shared_server.url) as tasky:
            tasky.status(task_id)
        assert len(proxy.carried) == carried


# -- request bodies ------------------------------------------------------------------------------
def test_json_bodies_are_written_as_httpx_would() -> None:
    assert dumps({"a": [1, 2.5, "é"], 3: None}) == '{"a":[1,2.5,"é"],"3":null}'.encode()
    assert dumps({"big": 2**70}) == b'{"big":1180591620717411303424}'
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError):
            dumps({"value": bad})  # never written as null
        with pytest.raises(ValueError):
            dumps({"value": bad, "other": None})


async def test_async_actions_without_a_body(shared_server: ServerProcess) -> None:
    """POSTs with no body go out labelled JSON (aiohttp would say octet-stream: a 415)."""
    async with AsyncClient(shared_server.url) as tasky:
        task_id = await tasky.submit("Hold", {"seconds": 30})
        assert (await tasky.cancel(task_id)).task_id == task_id
        final = await tasky.wait(task_id, timeout=30)
        assert final.status is Status.CANCELED


def _recording(answer: bytes, seen: list[bytes], count: int) -> Callable[[socket.socket], None]:
    def serve(conn: socket.socket) -> None:
        for _ in range(count):
            request = read_request(conn)
            if not request:
                return
            seen.append(request)
            conn.sendall(answer)
        read_request(conn)

    return serve


def _headers(request: bytes) -> tuple[bytes, dict[bytes, bytes], bytes]:
    head, _, body = request.partition(b"\r\n\r\n")
    line, *fields = head.split(b"\r\n")
    pairs = [field.split(b": ", 1) for field in fields]
    assert len({name.lower() for name, _ in pairs}) == len(pairs), "a header sent twice"
    return line, {name.lower(): value for name, value in pairs}, body


def test_the_lean_path_sends_what_httpx_would(monkeypatch: pytest.MonkeyPatch) -> None:
    """Calls skip httpx's Request objects after the first per target: each request on the wire
    still has its own length, the token, and (unique per call) its idempotency key."""
    monkeypatch.setenv("TASKY_TOKEN", "s3cret")
    created = b'{"TaskId":"' + b"a" * 32 + b'"}'
    answer = b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
    seen: list[bytes] = []
    recording = _recording(answer % len(created) + created, seen, 4)
    with SocketServer(recording) as server, Client(server.url) as tasky:
        assert tasky.submit("Echo", {"value": 1}) == "a" * 32
        assert tasky.submit("Echo", {"value": "longer"}) == "a" * 32
        assert tasky.submit("Echo", {"value": 2}, idempotency_key="k-1") == "a" * 32
        assert tasky.submit("Echo", None, retries=2) == "a" * 32
    bodies = [b'{"value":1}', b'{"value":"longer"}', b'{"value":2}', b"{}"]
    for request, body in zip(seen, bodies, strict=True):
        _, headers, sent = _headers(request)
        assert sent == body
        assert headers[b"content-length"] == str(len(body)).encode()
        assert headers[b"host"] == f"127.0.0.1:{server.port}".encode()
        assert headers[b"authorization"] == b"Bearer s3cret"
        assert headers[b"content-type"] == b"application/json"
    assert [_headers(r)[0] for r in seen] == [
        b"POST /tasky/v1/workers/Echo HTTP/1.1",
        b"POST /tasky/v1/workers/Echo HTTP/1.1",
        b"POST /tasky/v1/workers/Echo HTTP/1.1",
        b"POST /tasky/v1/workers/Echo?retries=2 HTTP/1.1",
    ]
    assert [_headers(r)[1].get(b"idempotency-key") for r in seen] == [None, None, b"k-1", None]


def test_a_refusal_on_the_lean_path_is_the_typed_error() -> None:
    body = b'{"Error": "no worker named Nope"}'
    answer = (
        b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
    )
    with SocketServer(canned(answer % len(body) + body)) as server, Client(server.url) as tasky:
        with pytest.raises(NotFound, match="no worker named Nope") as refused:
            tasky.submit("Nope", {})
        assert refused.value.status_code == 404
