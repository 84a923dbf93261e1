"""uvicorn's httptools protocol with bounds on slow and idle clients.

uvicorn has a keep-alive timeout between requests, but nothing bounds how long a client may
take to send a request head, nor a fresh connection that never sends a byte: a few hundred
such sockets (slowloris) would be held forever. This subclass adds:

- a head timeout: from the connection's (or the next request's) first byte, the request
  line and headers must arrive within ``header_timeout`` seconds, else 408 and close;
- a body timeout: a body that spans more than one read must be complete within
  ``body_timeout`` seconds (also when the server answered early, e.g. 413, and uvicorn
  would go on reading and discarding it);
- a head size cap, so a fast trickle within the timeout cannot grow memory without bound;
- a connection cap: over ``max_connections`` a new connection is answered 503 at once and
  closed, so the excess is refused quickly instead of queueing behind the slow ones.

It also sends a small answer in one write (see :class:`_OneWrite`).
"""

from __future__ import annotations

import asyncio
import resource
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# Largest request line + headers, bytes (nginx's default large_client_header_buffers is 32k).
MAX_HEAD_BYTES = 64 * 1024
# File descriptors the server keeps for itself (database, logs, task processes) under its limit.
_RESERVED_FDS = 64


def _canned(status: str, message: str, *extra: str) -> bytes:
    body = ('{"Error": "' + message + '"}').encode()
    head = [
        f"HTTP/1.1 {status}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        "connection: close",
        *extra,
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


_BUSY = _canned(
    "503 Service Unavailable", "the server has too many open connections", "retry-after: 1"
)
_TIMEOUT = _canned("408 Request Timeout", "the request did not arrive in time")
_TOO_LARGE = _canned("431 Request Header Fields Too Large", "the request headers are too large")


def connection_cap(wanted: int) -> int:
    """``wanted``, lowered to fit the process's file descriptor limit (each connection is one)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - _RESERVED_FDS))


def bounded_protocol(
    header_timeout: float, body_timeout: float, max_connections: int
) -> type[HttpToolsProtocol]:
    """The protocol class for ``uvicorn.Config(http=...)``, with these bounds."""

    class BoundedHttpToolsProtocol(_Bounded):
        pass

    BoundedHttpToolsProtocol.header_timeout = header_timeout
    BoundedHttpToolsProtocol.body_timeout = body_timeout
    BoundedHttpToolsProtocol.max_connections = max_connections
    return BoundedHttpToolsProtocol


class _Bounded(HttpToolsProtocol):
    # Set by bounded_protocol from the settings (no defaults here: Settings holds them).
    header_timeout: float
    body_timeout: float
    max_connections: int

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._timer: asyncio.TimerHandle | None = None
        # Where the request being read stands: in its head, in its body, or neither (between
        # requests: the keep-alive timeout's business, so no timer of ours runs then).
        self._in_head = False
        self._in_body = False
        self._head_bytes = 0
        self._completed = False  # a request ended during the current read

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            transport.write(_BUSY)
            transport.close()
            return
        self._arm(self.header_timeout)  # a connection that never sends a byte is a slow head

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._completed = False
        super().data_received(data)
        # Timers start only for what did not arrive whole in this read: a client that sends
        # each request in one piece (nearly all do) costs no timer at all.
        if self._in_body:
            self._arm(self.body_timeout)
        elif self._in_head or not self._completed:  # a partial head, or bytes that are no request
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._refuse(_TOO_LARGE)
            else:
                self._arm(self.header_timeout)

    def on_message_begin(self) -> None:
        self._in_head = True
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._in_body = True
        self._head_bytes = 0
        self._disarm()
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle.transport is self.transport:
            cycle.transport = _OneWrite(self.transport, self.loop)

    def on_message_complete(self) -> None:
        self._in_body = False
        self._completed = True
        self._disarm()
        super().on_message_complete()

    def _arm(self, seconds: float) -> None:
        if self._timer is None and not self.transport.is_closing():
            self._timer = self.loop.call_later(seconds, self._refuse, _TIMEOUT)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _refuse(self, answer: bytes) -> None:
        self._disarm()
        if self.transport.is_closing():
            return
        # An answer already under way must not get a second one spliced into it.
        if self.cycle is None or self.cycle.response_complete or not self.cycle.response_started:
            self.transport.write(answer)
        self.transport.close()


# A body up to this size is joined to the response head it follows; a larger one is written after
# it (two writes, but no copy of a large body).
_JOIN_MAX = 64 * 1024


class _OneWrite(asyncio.Transport):
    """The connection as one request's response cycle sees it.

    uvicorn writes a response's head as soon as the application starts the response and its
    body when the application sends it: two sends, two TCP segments, and a client that wakes up
    for the head only to wait for the body. Here the head is held until the body's first bytes
    or the end of the current event-loop step, whichever comes first: a small answer (every
    submit) leaves in one send, and an answer whose body comes later (an event stream) still
    gets its head at once.
    """

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._started = False
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._started:  # the head (or a "100 Continue"): wait for what follows it
            self._started = True
            self._held = bytes(data)
            self._loop.call_soon(self.flush)
            return
        held = self._held
        if held is not None:
            self._held = None
            if len(data) <= _JOIN_MAX:
                self._transport.write(held + data)
                return
            self._transport.write(held)
        self._transport.write(data)

    def flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if not self._transport.is_closing():
                self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()
