"""Small real socket servers for the transport tests: canned answers and a forward proxy."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from types import TracebackType


def read_request(conn: socket.socket) -> bytes:
    """One HTTP/1.1 request (head and a Content-Length body), or b"" when the peer closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return b""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        body += conn.recv(65536)
    return head + b"\r\n\r\n" + body


class SocketServer:
    """Accepts connections on a loopback port and hands each to ``serve`` in its own thread."""

    def __init__(self, serve: Callable[[socket.socket], None]) -> None:
        self._serve = serve
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.connections = 0
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> SocketServer:
        self._accepting.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # close() alone does not wake an accept() blocked in another thread (Linux): each
        # test would wait out the join's 5 s; shutdown() does.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._accepting.join(5)
        for thread in self._threads:
            thread.join(5)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            thread = threading.Thread(target=self._handle, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _handle(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):  # the client hung up: nothing to serve
            self._serve(conn)


def canned(*answers: bytes, close: bool = False) -> Callable[[socket.socket], None]:
    """Each request on a connection gets the next answer; with ``close``, the connection is
    closed after the last one."""

    def serve(conn: socket.socket) -> None:
        for answer in answers:
            if not read_request(conn):
                return
            conn.sendall(answer)
        if not close:
            read_request(conn)

    return serve


class ForwardProxy(SocketServer):
    """A plain-HTTP forward proxy: takes absolute-form requests, forwards each over a fresh
    connection (``Connection: close``) and relays the answer; notes the URLs it carried."""

    def __init__(self) -> None:
        super().__init__(self._relay)
        self.carried: list[str] = []

    def _relay(self, conn: socket.socket) -> None:
        request = read_request(conn)
        if not request:
            return
        head, _, body = request.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        method, target, version = lines[0].split(b" ")
        self.carried.append(target.decode())
        authority, _, path = target.split(b"://", 1)[1].partition(b"/")
        host, _, port = authority.partition(b":")
        headers = [
            line for line in lines[1:] if not line.lower().startswith((b"connection", b"proxy-"))
        ]
        upstream_head = b"\r\n".join(
            [b"%s /%s %s" % (method, path, version), *headers, b"Connection: close"]
        )
        with socket.create_connection((host.decode(), int(port or 80))) as upstream:
            upstream.sendall(upstream_head + b"\r\n\r\n" + body)
            while chunk := upstream.recv(65536):
                conn.sendall(chunk)
