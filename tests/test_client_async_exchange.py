"""The asyncio client's lean exchange (tasky.client._http1_async) against real sockets: kept-alive
connections reused and dropped at the right times, answers framed every way HTTP/1.1 allows,
servers that hang up, stay silent or send garbage, cancelled calls, and the connection cap."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any

import httpx
import pytest

from tasky import AsyncClient
from tasky.client import NotFound, ServerUnreachable
from tasky.client._http1_async import AsyncExchange
from tasky.states import Status
from tests.client_server import WORKER_ARGS, shared_server
from tests.conftest import ServerProcess
from tests.raw_http import SocketServer, canned, read_request

__all__ = ["shared_server"]  # the fixture, imported so pytest finds it here

EMPTY_LIST = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]"


class CountingExchange(AsyncExchange):
    """The real exchange, noting how many connections it opened."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.opened = 0

    async def _dial(self, origin: tuple[str, str, int], timeout: float | None) -> Any:
        self.opened += 1
        return await super()._dial(origin, timeout)


def lean_client(url: str, exchange: AsyncExchange, **options: Any) -> AsyncClient:
    client = AsyncClient(url, **options)
    client._lean = exchange
    return client


def test_the_asyncio_client_uses_the_lean_exchange_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert isinstance(AsyncClient("http://127.0.0.1:1")._lean, AsyncExchange)
    given = AsyncClient("http://127.0.0.1:1", transport=httpx.AsyncHTTPTransport())
    assert given._lean is None  # a transport of the caller's own carries every call
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    assert AsyncClient("http://127.0.0.1:1")._lean is None  # the proxy's transport does


async def test_one_connection_carries_call_after_call(shared_server: ServerProcess) -> None:
    exchange = CountingExchange()
    async with lean_client(shared_server.url, exchange) as tasky:
        ids = [await tasky.submit("Echo", {"value": n}) for n in range(20)]
        assert len(set(ids)) == 20
        final = await tasky.wait(ids[-1], timeout=30)  # the event stream: the other transport
        assert final.status is Status.COMPLETED
        assert (await tasky.result(ids[-1])).output == {"value": 19}
        with pytest.raises(NotFound):  # a refusal is read as from any transport
            await tasky.status("0" * 32)
    assert exchange.opened == 1


async def test_calls_in_flight_share_a_few_connections(shared_server: ServerProcess) -> None:
    exchange = CountingExchange()
    async with lean_client(shared_server.url, exchange) as tasky:
        ids = await asyncio.gather(*(tasky.submit("Echo", {"value": n}) for n in range(64)))
        assert len(set(ids)) == 64
        statuses = await asyncio.gather(*(tasky.status(task_id) for task_id in ids))
        assert [s.task_id for s in statuses] == list(ids)
    assert exchange.opened <= 64  # at most one per call in flight, then reused
    assert sum(exchange._open.values()) == 0  # closed with the client, none counted as open


async def test_the_connection_cap_makes_calls_wait() -> None:
    concurrent = 0
    most = 0
    lock = threading.Lock()

    def slow(conn: socket.socket) -> None:
        nonlocal concurrent, most
        with lock:
            concurrent += 1
            most = max(most, concurrent)
        try:
            while read_request(conn):
                time.sleep(0.05)
                conn.sendall(EMPTY_LIST)
        finally:
            with lock:
                concurrent -= 1

    with SocketServer(slow) as server:
        exchange = CountingExchange(max_connections=2)
        async with lean_client(server.url, exchange) as tasky:
            answers = await asyncio.gather(*(tasky.workers() for _ in range(10)))
        assert answers == [[]] * 10
        assert exchange.opened == 2
        assert server.connections == 2
        assert most == 2


async def test_a_connection_closed_by_the_server_is_not_reused(server_factory: object) -> None:
    server: ServerProcess = server_factory(*WORKER_ARGS, "--keep-alive-timeout", "0.2")  # type: ignore[operator]
    exchange = CountingExchange()
    async with lean_client(server.url, exchange) as tasky:
        assert await tasky.workers()
        await asyncio.sleep(1.0)  # the server has closed the idle connection by now
        assert await tasky.workers()
    assert exchange.opened == 2


async def test_idle_connections_expire_before_the_server_drops_them() -> None:
    with SocketServer(canned(EMPTY_LIST, EMPTY_LIST)) as server:
        async with lean_client(server.url, AsyncExchange(keepalive_expiry=0.2)) as tasky:
            assert await tasky.workers() == []
            await asyncio.sleep(0.4)
            assert await tasky.workers() == []
        assert server.connections == 2


async def test_answers_framed_by_chunks_or_by_closing() -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"1\r\n[\r\n1\r\n]\r\n0\r\n\r\n"
    )
    until_close = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n[]"
    )
    with SocketServer(canned(chunked, until_close, close=True)) as server:
        async with lean_client(server.url, AsyncExchange()) as tasky:
            assert await tasky.workers() == []  # chunked, kept alive
            assert await tasky.workers() == []  # read until the server closed
            assert server.connections == 1
            assert await tasky.workers() == []  # a new connection: the closed one is not reused
        assert server.connections == 2


async def test_an_answer_split_across_many_reads() -> None:
    def trickle(conn: socket.socket) -> None:
        read_request(conn)
        for byte in EMPTY_LIST:
            conn.sendall(bytes([byte]))
            time.sleep(0.001)
        read_request(conn)

    with SocketServer(trickle) as server:
        async with lean_client(server.url, AsyncExchange()) as tasky:
            assert await tasky.workers() == []


async def test_a_server_that_hangs_up_stays_silent_or_sends_garbage() -> None:
    def hang_up(conn: socket.socket) -> None:
        read_request(conn)

    with SocketServer(hang_up) as server:
        async with lean_client(server.url, AsyncExchange()) as tasky:
            with pytest.raises(ServerUnreachable, match="without sending a response"):
                await tasky.workers()

    def cut_short(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(EMPTY_LIST[:-1])  # the body says 2 bytes; 1 comes, then the end

    with SocketServer(cut_short) as server:
        async with lean_client(server.url, AsyncExchange()) as tasky:
            with pytest.raises(ServerUnreachable, match="mid-answer"):
                await tasky.workers()

    def garbage(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(b"SSH-2.0-OpenSSH\r\n\r\n")
        read_request(conn)

    with SocketServer(garbage) as server:
        async with lean_client(server.url, AsyncExchange()) as tasky:
            with pytest.raises(ServerUnreachable, match="unreadable answer"):
                await tasky.workers()

    def silent(conn: socket.socket) -> None:
        read_request(conn)
        time.sleep(2)

    with SocketServer(silent) as server:
        async with lean_client(server.url, AsyncExchange(), timeout=0.3) as tasky:
            started = time.monotonic()
            with pytest.raises(ServerUnreachable, match="timed out"):
                await tasky.workers()
            assert time.monotonic() - started < 1.5


async def test_a_cancelled_call_does_not_leave_its_connection_out_of_step() -> None:
    """The first call is cancelled before its (late) answer: that answer must not be read as
    the second call's."""
    late = (
        b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    )

    connections = 0

    def late_then_good(conn: socket.socket) -> None:
        nonlocal connections
        connections += 1
        if connections == 1:
            read_request(conn)
            time.sleep(0.3)
            conn.sendall(late)
        while read_request(conn):
            conn.sendall(EMPTY_LIST)

    with SocketServer(late_then_good) as server:
        exchange = CountingExchange()
        async with lean_client(server.url, exchange) as tasky:
            first = asyncio.create_task(tasky.workers())
            await asyncio.sleep(0.1)
            first.cancel()
            with pytest.raises(asyncio.CancelledError):
                await first
            assert exchange._open == {("http", "127.0.0.1", server.port): 0}
            assert await tasky.workers() == []  # on a fresh connection, not the late 404
        assert exchange.opened == 2


async def test_nothing_listening() -> None:
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        port = spare.getsockname()[1]
    async with AsyncClient(f"http://127.0.0.1:{port}") as tasky:
        with pytest.raises(ServerUnreachable) as exc:
            await tasky.workers()
    assert exc.value.url == f"http://127.0.0.1:{port}/tasky/v1"


def test_a_client_serves_one_event_loop() -> None:
    with SocketServer(canned(EMPTY_LIST, EMPTY_LIST)) as server:
        first, second = asyncio.new_event_loop(), asyncio.new_event_loop()
        try:
            client = lean_client(server.url, CountingExchange())
            assert first.run_until_complete(client.workers()) == []
            # Its kept-alive connection belongs to the first loop: a clear refusal, not a hang.
            with pytest.raises(RuntimeError, match=r"one client per asyncio\.run"):
                second.run_until_complete(client.workers())
            with pytest.raises(RuntimeError, match="closed in the event loop it was used in"):
                second.run_until_complete(client.aclose())
            first.run_until_complete(client.aclose())
        finally:
            first.close()
            second.close()


async def test_the_closed_client_refuses_and_leaves_no_socket() -> None:
    with SocketServer(canned(EMPTY_LIST)) as server:
        exchange = AsyncExchange()
        tasky = lean_client(server.url, exchange)
        assert await tasky.workers() == []
        (conn,) = exchange._idle[("http", "127.0.0.1", server.port)]
        await tasky.aclose()
        assert conn.lost.done()  # the socket is closed, not only asked to close
        with pytest.raises(ServerUnreachable, match="closed"):
            await tasky.workers()
