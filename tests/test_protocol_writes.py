"""Answers leave the server in one write (tasky/protocol.py, _OneWrite), against a real server.

uvicorn writes a response's head and its body separately; each becomes a TCP segment of its own
and wakes the client twice. The kernel counts the segments a socket received (TCP_INFO), so the
test asks it rather than timing anything.
"""

from __future__ import annotations

import socket
import struct
import sys

import httpx
import pytest

from tests.conftest import ServerProcess

# struct tcp_info (linux/tcp.h): tcpi_data_segs_in, the segments received that carried data (not
# bare acknowledgements), is the u32 at byte 152 (Linux 4.6 and later).
_DATA_SEGS_IN = 152
ANSWERS = 20

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="TCP_INFO segment counts are Linux's"
)


def _segments_in(sock: socket.socket) -> int:
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    count: int = struct.unpack_from("I", info, _DATA_SEGS_IN)[0]
    return count


def _exchange(sock: socket.socket, request: bytes) -> bytes:
    """Send one request; read its whole answer (Content-Length framed)."""
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection"
        body += chunk
    return head + b"\r\n\r\n" + body


def _segments_per_answer(server: ServerProcess, request: bytes) -> float:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        _exchange(sock, request)
        before = _segments_in(sock)
        for _ in range(ANSWERS):
            answer = _exchange(sock, request)
        per_answer = (_segments_in(sock) - before) / ANSWERS
    assert answer.startswith(b"HTTP/1.1 2")
    return per_answer


@pytest.mark.server
def test_a_submit_is_answered_in_one_segment(server: ServerProcess) -> None:
    submit = (
        f"POST /tasky/v1/workers/Hold HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    ).encode()
    assert _segments_per_answer(server, submit) == 1  # head and body apart: 2


@pytest.mark.server
def test_a_read_is_answered_in_one_segment(server: ServerProcess) -> None:
    read = f"GET /tasky/v1/workers HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode()
    assert _segments_per_answer(server, read) == 1


@pytest.mark.server
def test_a_large_answer_is_whole_and_in_order(server: ServerProcess) -> None:
    # Far past the size joined to the head: written after it, not copied into it.
    document = httpx.get(server.api + "/openapi.json", timeout=10)
    assert document.status_code == 200
    assert len(document.content) > 64 * 1024
    assert document.json()["openapi"].startswith("3.")
