"""A callback receiver for tests: an HTTP server on 127.0.0.2 that records every POST."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

SECRET = "cb-secret-for-tests"


@dataclass
class Receiver:
    """Records every POST; answers the codes of ``script`` in turn, then ``then``."""

    host: str
    script: list[int] = field(default_factory=list)
    then: int = 200
    # Seconds to wait before answering (a slow receiver).
    delay: float = 0.0
    calls: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    port: int = 0

    def url(self, path: str = "/hook") -> str:
        return f"http://{self.host}:{self.port}{path}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    target = Receiver("127.0.0.2")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            time.sleep(target.delay)
            with lock:
                target.paths.append(self.path)
                target.calls.append(({k.lower(): v for k, v in self.headers.items()}, body))
                code = target.script.pop(0) if target.script else target.then
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((target.host, 0), Handler)
    target.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield target
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def verified(headers: dict[str, str], body: bytes) -> bool:
    """The receiver's check, written from the docs rather than with Tasky's own code."""
    parts = dict(part.split("=", 1) for part in headers["tasky-signature"].split(","))
    expected = hmac.new(
        SECRET.encode(), parts["t"].encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    fresh = abs(time.time() - int(parts["t"])) < 300
    return fresh and hmac.compare_digest(parts["v1"], expected)
