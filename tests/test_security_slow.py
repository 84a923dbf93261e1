"""Slow, idle and too many clients, against real server processes (tasky/protocol.py, events).

Every loop here is bounded by a count and a deadline; every socket is closed by the test.
"""

from __future__ import annotations

import contextlib
import select
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tasky.api.stream_caps import StreamCaps
from tasky.protocol import connection_cap
from tests.conftest import ServerProcess

SLOW_SOCKETS = 300
PARTIAL_HEAD = b"GET /tasky/v1/workers HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


@contextlib.contextmanager
def sockets(server: ServerProcess, count: int, first: bytes = b"") -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            if first:
                s.sendall(first)
            opened.append(s)
        yield opened
    finally:
        for s in opened:
            s.close()


def read_until_closed(s: socket.socket, deadline: float) -> bytes | None:
    """What the server sent before closing; None if it was still open at the deadline."""
    received = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([s], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk
    return None


def trickle(opened: list[socket.socket]) -> None:
    """One more header byte on every socket still open: a slowloris keeps the head growing."""
    for s in opened:
        with contextlib.suppress(OSError):
            s.send(b"a")


def test_slow_headers_neither_starve_others_nor_stay_open(server_factory: Any) -> None:
    srv: ServerProcess = server_factory("--header-timeout", "2")
    with sockets(srv, SLOW_SOCKETS, PARTIAL_HEAD) as slow:
        trickle(slow)
        # A well-behaved client is served at once while all of them hang on.
        started = time.monotonic()
        r = httpx.get(f"{srv.api}/workers", timeout=3)
        assert r.status_code == 200
        assert time.monotonic() - started < 2
        # Trickling does not buy time: the clock runs from the head's first byte.
        for _ in range(3):
            time.sleep(0.4)
            trickle(slow)
        deadline = time.monotonic() + 5
        answers = [read_until_closed(s, deadline) for s in slow]
    still_open = sum(a is None for a in answers)
    assert still_open == 0, f"{still_open} slow sockets still open after the header timeout"
    assert all(a is not None and a.startswith(b"HTTP/1.1 408") for a in answers)
    assert httpx.get(f"{srv.api}/workers").status_code == 200


def test_silent_and_idle_connections_are_closed(server_factory: Any) -> None:
    srv: ServerProcess = server_factory("--header-timeout", "1", "--keep-alive-timeout", "1")
    with sockets(srv, 1) as (silent,), sockets(srv, 1) as (idle,):
        # The idle one completes a request first, then says nothing more.
        idle.sendall(b"GET /tasky/v1/workers HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        deadline = time.monotonic() + 3.5  # uvicorn's own keep-alive default is 5 s
        assert read_until_closed(silent, deadline) is not None
        answer = read_until_closed(idle, deadline)
        assert answer is not None and answer.startswith(b"HTTP/1.1 200")
        assert answer.count(b"HTTP/1.1") == 1  # closed silently, no second answer


def test_a_slow_second_request_on_a_kept_alive_connection_is_cut_off(server_factory: Any) -> None:
    """The head clock starts again with each request, not only when the connection opens."""
    srv: ServerProcess = server_factory("--header-timeout", "1", "--keep-alive-timeout", "60")
    with sockets(srv, 1) as (s,):
        s.sendall(b"GET /tasky/v1/workers HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        first = b""
        deadline = time.monotonic() + 5
        while b"}]" not in first and time.monotonic() < deadline:  # the whole JSON list
            ready, _, _ = select.select([s], [], [], 1)
            if ready:
                first += s.recv(65536)
        assert first.startswith(b"HTTP/1.1 200") and first.endswith(b"}]")
        time.sleep(1.5)  # longer than the head timeout: an idle pause is not a slow head
        s.sendall(PARTIAL_HEAD)
        for _ in range(3):
            time.sleep(0.3)
            trickle([s])
        answer = read_until_closed(s, time.monotonic() + 3)
    assert answer is not None and answer.startswith(b"HTTP/1.1 408")


def test_slow_bodies_are_cut_off(server_factory: Any) -> None:
    """Headers on time, then a body that trickles: waiting for it, or after an early answer."""
    srv: ServerProcess = server_factory("--body-timeout", "1.5")
    head = (
        "POST /tasky/v1/workers/sleeper HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: {}\r\nContent-Length: 100000\r\n\r\n{{"
    )
    with (
        sockets(srv, 1, head.format("application/json").encode()) as (waited,),
        sockets(srv, 1, head.format("text/plain").encode()) as (answered,),
    ):
        started = time.monotonic()
        for _ in range(4):
            trickle([waited, answered])
            time.sleep(0.3)
        waiting = read_until_closed(waited, started + 5)
        early = read_until_closed(answered, started + 5)
    assert waiting is not None and waiting.startswith(b"HTTP/1.1 408")
    # Answered 415 at once; then the rest of its body was not awaited for ever.
    assert early is not None and early.startswith(b"HTTP/1.1 415")
    assert httpx.get(f"{srv.api}/tasks").json()["Tasks"] == []


def test_head_larger_than_the_cap_is_431(server: ServerProcess) -> None:
    with sockets(server, 1, PARTIAL_HEAD) as (s,):
        with contextlib.suppress(OSError):  # the server may close while we still send
            for _ in range(20):
                s.sendall(b"x" * 8192)
        answer = read_until_closed(s, time.monotonic() + 5)
    assert answer is not None and answer.startswith(b"HTTP/1.1 431")


def test_connections_over_the_cap_are_refused_at_once(server_factory: Any) -> None:
    srv: ServerProcess = server_factory("--max-connections", "20", "--header-timeout", "60")
    with sockets(srv, 20):
        time.sleep(0.3)  # let the server take them all
        started = time.monotonic()
        with sockets(srv, 1) as (extra,):
            answer = read_until_closed(extra, time.monotonic() + 3)
        assert answer is not None and answer.startswith(b"HTTP/1.1 503"), answer
        assert b"retry-after: 1" in answer
        assert time.monotonic() - started < 2
    # Freed slots serve again (bounded retries: the server notices the closes asynchronously).
    for _ in range(50):
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{srv.api}/workers", timeout=2).status_code == 200:
                break
        time.sleep(0.1)
    else:
        pytest.fail("the server did not serve again after the connections closed")


@contextlib.contextmanager
def event_stream(srv: ServerProcess) -> Iterator[httpx.Response]:
    with httpx.Client(timeout=5) as client, client.stream("GET", f"{srv.api}/events") as r:
        # Held until the stream is closed: a dropped iterator would close the stream early.
        chunks = r.iter_raw()
        if r.status_code == 200:
            next(chunks)  # the stream's greeting: it is counted by now
        yield r


def test_event_streams_over_the_total_are_503(server_factory: Any) -> None:
    srv: ServerProcess = server_factory("--max-streams", "2")
    with contextlib.ExitStack() as stack:
        opened = [stack.enter_context(event_stream(srv)) for _ in range(2)]
        assert [r.status_code for r in opened] == [200, 200]
        with event_stream(srv) as refused:
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "5"
            refused.read()
            assert "most event streams" in refused.json()["Error"]
    # Closed streams give their slots back.
    for _ in range(50):
        with event_stream(srv) as again:
            if again.status_code == 200:
                break
        time.sleep(0.1)
    else:
        pytest.fail("closed event streams did not free their slots")


def test_event_streams_over_the_per_caller_cap_are_429(server_factory: Any) -> None:
    srv: ServerProcess = server_factory("--max-streams-per-principal", "2")
    with contextlib.ExitStack() as stack:
        opened = [stack.enter_context(event_stream(srv)) for _ in range(2)]
        assert [r.status_code for r in opened] == [200, 200]
        with event_stream(srv) as refused:
            assert refused.status_code == 429
            assert refused.headers["retry-after"] == "5"
        # Other requests of the same caller are not affected.
        assert httpx.get(f"{srv.api}/workers").status_code == 200


def test_stream_caps_count_each_caller_apart() -> None:
    caps = StreamCaps(total=3, per_principal=2)
    assert caps.acquire("alice") is None and caps.acquire("alice") is None
    refused = caps.acquire("alice")
    assert refused is not None and refused.status_code == 429
    assert caps.acquire("bob") is None  # alice's streams do not use up bob's share
    total = caps.acquire("carol")
    assert total is not None and total.status_code == 503
    caps.release("alice")
    assert caps.acquire("carol") is None
    assert caps.open == 3


def test_connection_cap_fits_the_descriptor_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Over the process's file limit, accept() would fail instead of answering 503."""
    monkeypatch.setattr("resource.getrlimit", lambda _: (1024, 4096))
    assert connection_cap(1000) == 1024 - 64
    assert connection_cap(100) == 100
