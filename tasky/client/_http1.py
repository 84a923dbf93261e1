"""A lean HTTP/1.1 transport for the blocking client: kept-alive sockets read by httptools.

httpx's default transport (httpcore with h11, written in Python) spends about 0.3 ms of CPU on
each request on the benchmark machine; the same request over a kept-alive socket, its answer
parsed by httptools (llhttp, the parser uvicorn itself uses), spends about 0.02 ms. The blocking
client makes one request after another, so that difference is most of what a call costs the
caller (docs/benchmarks.md, "The Python clients").

It speaks what a Tasky server speaks: HTTP/1.1 over TCP or TLS, answers framed by Content-Length
or chunked, bodies streamed as they arrive (the event stream). It implements
:class:`httpx.BaseTransport`, so timeouts, errors and responses are httpx's. Proxies are not its
business: a client whose URL an environment proxy applies to keeps httpx's own transport.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any

import httptools
import httpx

# A kept-alive connection is dropped after this long unused: the server closes its end after its
# keep-alive timeout (5 s by default), and a request sent at that moment would be lost.
KEEPALIVE_EXPIRY = 4.0
MAX_IDLE = 16
RECV_SIZE = 65536
# Answers up to this size (Content-Length) are read whole before the response is returned.
SMALL_BODY = 1 << 20
_DEFAULT_PORTS = {"http": 80, "https": 443}
_UNSET = object()
_HAS_POLL = hasattr(select, "poll")


def origin_of(url: httpx.URL) -> tuple[str, str, int]:
    """The (scheme, host, port) a kept-alive connection serves."""
    return url.scheme, url.host, url.port or _DEFAULT_PORTS.get(url.scheme, 0)


class _Answer:
    """httptools callbacks: the status line and headers, body chunks, the end of the message."""

    __slots__ = ("chunks", "complete", "headers", "headers_done")

    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.headers_done = False
        self.complete = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        self.complete = True

    def take_body(self) -> bytes:
        body = b"".join(self.chunks) if len(self.chunks) != 1 else self.chunks[0]
        self.chunks.clear()
        return body

    def keep_alive(self, parser: httptools.HttpResponseParser) -> bool:
        """Whether the connection may carry another request. Asked of the headers: httptools
        forgets its own answer once the message is complete."""
        if parser.get_http_version() != "1.1":
            return False
        return not any(
            name.lower() == b"connection" and b"close" in value.lower()
            for name, value in self.headers
        )

    def framed(self) -> bool:
        """Whether the answer says where it ends (else it ends when the connection closes)."""
        framing = (b"content-length", b"transfer-encoding")
        return any(name.lower() in framing for name, _ in self.headers)


class _Connection:
    __slots__ = ("idle_since", "origin", "sock", "timeout")

    def __init__(self, sock: socket.socket, origin: tuple[str, str, int]) -> None:
        self.sock = sock
        self.origin = origin
        self.idle_since = 0.0
        self.timeout: object = _UNSET

    def set_timeout(self, timeout: float | None) -> None:
        # settimeout switches the socket between blocking and non-blocking modes (a syscall):
        # only when the value changes.
        if timeout != self.timeout:
            self.sock.settimeout(timeout)
            self.timeout = timeout

    def still_open(self) -> bool:
        """An idle connection with something to read has been closed by the server (or is out of
        step with it): it must not carry another request."""
        if _HAS_POLL:
            poller = select.poll()
            poller.register(self.sock, select.POLLIN)
            return not poller.poll(0)
        readable, _, _ = select.select([self.sock], [], [], 0)  # Windows has no poll
        return not readable

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def _timeouts(request: httpx.Request) -> dict[str, float | None]:
    found: Any = request.extensions.get("timeout")
    return found if isinstance(found, dict) else {}


def _head(request: httpx.Request, body: bytes) -> tuple[bytes, bytes]:
    """The request's bytes: request line and headers, then the body (chunked only if asked)."""
    lines = [request.method.encode("ascii"), b" ", request.url.raw_path, b" HTTP/1.1\r\n"]
    chunked = False
    for name, value in request.headers.raw:
        if name.lower() == b"transfer-encoding":
            chunked = True
        lines += [name, b": ", value, b"\r\n"]
    lines.append(b"\r\n")
    if chunked:
        body = (b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)) if body else b"0\r\n\r\n"
    return b"".join(lines), body


class _BodyStream(httpx.SyncByteStream):
    """The rest of an answer whose body had not all arrived with its headers."""

    def __init__(
        self,
        transport: Http1Transport,
        conn: _Connection,
        parser: httptools.HttpResponseParser,
        answer: _Answer,
        read_timeout: float | None,
    ) -> None:
        self._transport = transport
        self._conn: _Connection | None = conn
        self._parser = parser
        self._answer = answer
        self._read_timeout = read_timeout

    def __iter__(self) -> Iterator[bytes]:
        answer = self._answer
        if answer.chunks:
            yield answer.take_body()
        while not answer.complete:
            conn = self._conn
            if conn is None:
                raise httpx.StreamClosed()
            data = _recv(conn, self._read_timeout)
            if not data:
                if answer.framed():
                    self.close()
                    raise httpx.RemoteProtocolError("the server closed the connection mid-answer")
                answer.complete = True  # the body was "until the connection closes"
                self.close()
                return
            _feed(self._parser, data)
            if answer.chunks:
                yield answer.take_body()
        self._finish()

    def _finish(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._transport._release(conn, self._answer.keep_alive(self._parser))

    def close(self) -> None:
        # Closed before its end (a stream the caller stopped reading): the connection is out of
        # step with the server and cannot be reused.
        conn, self._conn = self._conn, None
        if conn is not None:
            if self._answer.complete:
                self._transport._release(conn, self._answer.keep_alive(self._parser))
            else:
                conn.close()


def _send(conn: _Connection, head: bytes, body: bytes, timeout: float | None) -> None:
    conn.set_timeout(timeout)
    try:
        conn.sock.sendall(head + body if len(body) < 65536 else head)
        if len(body) >= 65536:
            conn.sock.sendall(body)
    except TimeoutError as exc:
        conn.close()
        raise httpx.WriteTimeout(str(exc) or "timed out sending the request") from exc
    except OSError as exc:
        conn.close()
        raise httpx.WriteError(str(exc) or type(exc).__name__) from exc


def _recv(conn: _Connection, timeout: float | None) -> bytes:
    conn.set_timeout(timeout)
    try:
        return conn.sock.recv(RECV_SIZE)
    except TimeoutError as exc:
        conn.close()
        raise httpx.ReadTimeout(str(exc) or "timed out reading the answer") from exc
    except OSError as exc:
        conn.close()
        raise httpx.ReadError(str(exc) or type(exc).__name__) from exc


def _small(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name.lower() == b"content-length":
            return value.isdigit() and int(value) <= SMALL_BODY
    return False


def _feed(parser: httptools.HttpResponseParser, data: bytes) -> None:
    try:
        parser.feed_data(data)
    except httptools.HttpParserError as exc:
        raise httpx.RemoteProtocolError(f"unreadable answer: {exc}") from exc


class Http1Transport(httpx.BaseTransport):
    """Keeps connections per origin (several threads may share one client) and reuses each
    while the server keeps it alive."""

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        keepalive_expiry: float = KEEPALIVE_EXPIRY,
        max_idle: int = MAX_IDLE,
    ) -> None:
        self._ssl_context = ssl_context
        self._keepalive_expiry = keepalive_expiry
        self._max_idle = max_idle
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._lock = threading.Lock()
        self._closed = False

    # -- the pool -------------------------------------------------------------------------------
    def _checkout(self, origin: tuple[str, str, int]) -> _Connection | None:
        now = time.monotonic()
        while True:
            with self._lock:
                idle = self._idle.get(origin)
                if not idle:
                    return None
                conn = idle.pop()
            if now - conn.idle_since < self._keepalive_expiry and conn.still_open():
                return conn
            conn.close()

    def _release(self, conn: _Connection, keep_alive: bool) -> None:
        if keep_alive:
            conn.idle_since = time.monotonic()
            with self._lock:
                idle = self._idle.setdefault(conn.origin, [])
                if not self._closed and len(idle) < self._max_idle:
                    idle.append(conn)
                    return
        conn.close()

    def _connect(self, request: httpx.Request, timeout: float | None) -> _Connection:
        sni = request.extensions.get("sni_hostname")
        return self._open(request.url, sni if isinstance(sni, str) else None, timeout)

    def _open(self, url: httpx.URL, sni: str | None, timeout: float | None) -> _Connection:
        scheme = url.scheme
        if scheme not in _DEFAULT_PORTS:
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {scheme!r}")
        host = url.host
        port = url.port or _DEFAULT_PORTS[scheme]
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(str(exc) or "timed out connecting") from exc
        except OSError as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if scheme == "https":
            if self._ssl_context is None:
                self._ssl_context = httpx.create_ssl_context()
            try:
                sock = self._ssl_context.wrap_socket(sock, server_hostname=sni or host)
            except (OSError, ssl.SSLError) as exc:
                sock.close()
                raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc
        conn = _Connection(sock, (scheme, host, port))
        conn.timeout = timeout
        return conn

    # -- a request ------------------------------------------------------------------------------
    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self._closed:
            raise httpx.TransportError("the client is closed")
        timeouts = _timeouts(request)
        url = request.url
        origin = origin_of(url)
        conn = self._checkout(origin) or self._connect(request, timeouts.get("connect"))
        head, body = _head(request, request.read())
        _send(conn, head, body, timeouts.get("write"))
        return self._answer(request, conn, timeouts.get("read"))

    def exchange(
        self, url: httpx.URL, head: bytes, body: bytes, timeouts: dict[str, float | None]
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """One request given as bytes (``head``: request line and headers, ending with the empty
        line; ``body``), its whole answer read: status, headers, body. No httpx Request or
        Response objects are made: they cost the blocking client more than the rest of a call.
        """
        if self._closed:
            raise httpx.TransportError("the client is closed")
        origin = origin_of(url)
        conn = self._checkout(origin) or self._open(url, None, timeouts.get("connect"))
        _send(conn, head, body, timeouts.get("write"))
        answer = _Answer()
        parser = httptools.HttpResponseParser(answer)
        read_timeout = timeouts.get("read")
        while not answer.complete:
            data = _recv(conn, read_timeout)
            if not data:
                conn.close()
                if not answer.headers_done:
                    raise httpx.RemoteProtocolError(
                        "Server disconnected without sending a response."
                    )
                if not answer.framed():
                    break  # the body was "until the connection closes"
                raise httpx.RemoteProtocolError("the server closed the connection mid-answer")
            try:
                _feed(parser, data)
            except httpx.RemoteProtocolError:
                conn.close()
                raise
        else:
            self._release(conn, answer.keep_alive(parser))
        return parser.get_status_code(), answer.headers, answer.take_body()

    def _answer(
        self, request: httpx.Request, conn: _Connection, read_timeout: float | None
    ) -> httpx.Response:
        answer = _Answer()
        parser = httptools.HttpResponseParser(answer)
        while not answer.headers_done:
            data = _recv(conn, read_timeout)
            if not data:
                conn.close()
                raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
            try:
                _feed(parser, data)
            except httpx.RemoteProtocolError:
                conn.close()
                raise
        if not answer.complete and _small(answer.headers):
            # A body of known, modest size is read here, not streamed through httpx: uvicorn
            # writes the headers and the body separately, so it is often one read behind.
            while not answer.complete:
                data = _recv(conn, read_timeout)
                if not data:
                    conn.close()
                    raise httpx.RemoteProtocolError("the server closed the connection mid-answer")
                try:
                    _feed(parser, data)
                except httpx.RemoteProtocolError:
                    conn.close()
                    raise
        status = parser.get_status_code()
        extensions = {"http_version": b"HTTP/1.1"}
        if request.method == "HEAD" and not answer.complete:
            # httptools cannot be told that a HEAD answer has no body: do not reuse this one.
            conn.close()
            return httpx.Response(
                status, headers=answer.headers, request=request, extensions=extensions
            )
        if answer.complete:
            # The usual case: the whole (small) answer came with its headers.
            self._release(conn, answer.keep_alive(parser))
            return httpx.Response(
                status,
                headers=answer.headers,
                content=answer.take_body(),
                request=request,
                extensions=extensions,
            )
        stream = _BodyStream(self, conn, parser, answer, read_timeout)
        return httpx.Response(
            status, headers=answer.headers, stream=stream, request=request, extensions=extensions
        )

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle = [conn for conns in self._idle.values() for conn in conns]
            self._idle.clear()
        for conn in idle:
            conn.close()
