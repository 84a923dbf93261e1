"""A lean HTTP/1.1 exchange for the asyncio client: kept-alive connections, answers parsed by
httptools, one request per connection at a time.

Through httpx and aiohttp, a submit cost the asyncio client about 0.44 ms of its own CPU on the
benchmark machine, with 32 submits in flight: as much as the server spent on it, so the client
was half of what a user measured. aiohttp builds a request object, a response object, header
multidicts, timers and trace hooks per request; this module writes the bytes that
:meth:`tasky.client._calls.RequestBuilder.raw` prepared and parses the answer with httptools
(llhttp, which uvicorn also uses), as :mod:`tasky.client._http1` does for the blocking client.

It serves the plain calls: a request, then its whole answer. An event stream, a HEAD request or a
client given a transport of its own go through httpx's transport as before. Errors are httpx's,
so the client turns them into ``ServerUnreachable`` as it does for any transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time

import httptools
import httpx

from tasky.client._http1 import _DEFAULT_PORTS, KEEPALIVE_EXPIRY, _Answer, origin_of

# The most connections open at once to one origin, as aiohttp's pool allows; a request beyond
# that waits for one to come free.
MAX_CONNECTIONS = 100
# How long aclose waits for closed connections to let go of their sockets.
CLOSE_WAIT = 1.0
Origin = tuple[str, str, int]


class _Connection(asyncio.Protocol):
    """One kept-alive connection; the answer in progress is fed to httptools as bytes arrive."""

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._answer = _Answer()
        self._parser = httptools.HttpResponseParser(self._answer)
        self._waiter: asyncio.Future[None] | None = None
        self._error: Exception | None = None
        # Done once the socket is closed: aclose waits for it, so no socket outlives the client.
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # -- asyncio.Protocol -----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:
            # Bytes no request asked for: the connection is out of step with the server.
            self.close()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"unreadable answer: {exc}"))
            return
        if self._answer.complete:
            self._wake()

    def eof_received(self) -> bool | None:
        return False  # the server is done with this connection: close it (connection_lost)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.lost.done():
            self.lost.set_result(None)
        answer = self._answer
        if self._waiter is None or answer.complete:
            return
        if answer.headers_done and not answer.framed():
            answer.complete = True  # the body was "until the connection closes"
            self._wake()
        elif answer.headers_done:
            self._fail(httpx.RemoteProtocolError("the server closed the connection mid-answer"))
        else:
            self._fail(httpx.RemoteProtocolError("Server disconnected without sending a response."))

    # -- one exchange ---------------------------------------------------------------------------
    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: Exception) -> None:
        self._error = error
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self.close()

    async def exchange(
        self, data: bytes, read_timeout: float | None
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes, bool]:
        """Send ``data`` and read the whole answer: status, headers, body, and whether the
        connection may carry another request."""
        if self.closed or self.transport is None:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = None
        if read_timeout is not None:
            timer = loop.call_later(read_timeout, self._timed_out, waiter)
        try:
            self.transport.write(data)
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()
        error, self._error = self._error, None
        if error is not None:
            raise error
        answer, parser = self._answer, self._parser
        reusable = not self.closed and answer.keep_alive(parser)
        status, headers, body = parser.get_status_code(), answer.headers, answer.take_body()
        # httptools forgets an answer once it is complete; a fresh one for the next request.
        self._answer = _Answer()
        self._parser = httptools.HttpResponseParser(self._answer)
        return status, headers, body, reusable

    def _timed_out(self, waiter: asyncio.Future[None]) -> None:
        if waiter is self._waiter:
            self._fail(httpx.ReadTimeout("timed out reading the answer"))

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class AsyncExchange:
    """Kept-alive connections per origin, in the one event loop that first used them (as
    aiohttp's session, the client's other transport, is)."""

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        keepalive_expiry: float = KEEPALIVE_EXPIRY,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self._ssl_context = ssl_context
        self._keepalive_expiry = keepalive_expiry
        self._max_connections = max_connections
        self._idle: dict[Origin, list[_Connection]] = {}
        self._open: dict[Origin, int] = {}
        self._waiting: dict[Origin, list[asyncio.Future[None]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    async def exchange(
        self, url: httpx.URL, head: bytes, body: bytes, timeouts: dict[str, float | None]
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """One request given as bytes (see ``Http1Transport.exchange``), its whole answer read."""
        if self._closed:
            raise httpx.TransportError("the client is closed")
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            if self._loop is not None:
                # Its connections belong to the first loop, which can no longer close them.
                raise RuntimeError(
                    "an AsyncClient serves the event loop it was first used in: "
                    "make one client per asyncio.run"
                )
            self._loop = loop
        origin = origin_of(url)
        conn = self._checkout(origin)
        if conn is None:
            conn = await self._connect(origin, timeouts.get("connect"))
        reusable = False
        try:
            status, headers, content, reusable = await conn.exchange(
                head + body, timeouts.get("read")
            )
        except BaseException:
            conn.close()  # cancelled or failed mid-exchange: out of step with the server
            raise
        finally:
            self._release(conn, reusable)
        return status, headers, content

    # -- the pool -------------------------------------------------------------------------------
    def _checkout(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < self._keepalive_expiry:
                return conn
            self._drop(conn)
        return None

    async def _connect(self, origin: Origin, timeout: float | None) -> _Connection:
        while self._open.get(origin, 0) >= self._max_connections:
            # Every connection is busy: wait for one to come back (or to close).
            waiter = asyncio.get_running_loop().create_future()
            self._waiting.setdefault(origin, []).append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one(origin)  # woken, then cancelled: pass the turn on
                raise
            finally:
                with contextlib.suppress(ValueError):
                    self._waiting[origin].remove(waiter)
            conn = self._checkout(origin)
            if conn is not None:
                return conn
        self._open[origin] = self._open.get(origin, 0) + 1
        try:
            return await self._dial(origin, timeout)
        except BaseException:
            self._open[origin] -= 1
            self._wake_one(origin)
            raise

    async def _dial(self, origin: Origin, timeout: float | None) -> _Connection:
        scheme, host, port = origin
        if scheme not in _DEFAULT_PORTS:
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {scheme!r}")
        context = None
        if scheme == "https":
            if self._ssl_context is None:
                self._ssl_context = httpx.create_ssl_context()
            context = self._ssl_context
        loop = asyncio.get_running_loop()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _Connection(origin),
                    host,
                    port,
                    ssl=context,
                    server_hostname=host if context is not None else None,
                ),
                timeout,
            )
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(str(exc) or "timed out connecting") from exc
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc
        assert conn.transport is not None
        sock = conn.transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def _release(self, conn: _Connection, reusable: bool) -> None:
        if reusable and not self._closed and not conn.closed:
            conn.idle_since = time.monotonic()
            self._idle.setdefault(conn.origin, []).append(conn)
        else:
            self._drop(conn)
        self._wake_one(conn.origin)

    def _drop(self, conn: _Connection) -> None:
        conn.close()
        self._open[conn.origin] -= 1

    def _wake_one(self, origin: Origin) -> None:
        for waiter in self._waiting.get(origin, ()):
            if not waiter.done():
                waiter.set_result(None)
                return

    async def aclose(self) -> None:
        """Close the idle connections and wait (a second at most: a TLS peer that does not
        answer the close) until their sockets are; connections in use close when released."""
        idle = [conn for conns in self._idle.values() for conn in conns]
        if idle and asyncio.get_running_loop() is not self._loop:
            raise RuntimeError("an AsyncClient must be closed in the event loop it was used in")
        self._closed = True
        self._idle.clear()
        for conn in idle:
            self._drop(conn)
        if idle:
            await asyncio.wait([conn.lost for conn in idle], timeout=CLOSE_WAIT)
        for conn in idle:
            if not conn.lost.done() and conn.transport is not None:
                conn.transport.abort()
