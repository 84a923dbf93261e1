"""HTTPS with --tls-cert/--tls-key, the plain-HTTP warning, and whom X-Forwarded-* is believed from.

The certificate authority is made up in the test (trustme): a real server process serves a
certificate it issued, and the client trusts that authority only.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from tasky.server import plain_http_warning
from tasky.settings import Settings
from tests.conftest import ServerProcess, free_port


@dataclass
class TlsServer(ServerProcess):
    """A ``tasky serve`` child that speaks HTTPS only."""

    trust: ssl.SSLContext | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def _wait_ready(self, timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.read_log()}")
            try:
                httpx.get(self.api + "/workers", verify=self.trust or False, timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError(f"server did not start:\n{self.read_log()}")


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_server(tmp_path: Path, ca: trustme.CA) -> Iterator[TlsServer]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    issued = ca.issue_cert("127.0.0.1", "localhost")
    issued.private_key_pem.write_to_path(str(key))
    issued.cert_chain_pems[0].write_to_path(str(cert))
    trust = ssl.create_default_context()
    ca.configure_trust(trust)
    # One from the option, one from its environment variable: both ways must work.
    srv = TlsServer(
        tmp_path / "data",
        free_port(),
        ["--tls-cert", str(cert)],
        {"TASKY_TLS_KEY": str(key)},
        trust=trust,
    )
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()


def test_https_with_the_given_certificate(tls_server: TlsServer) -> None:
    trust = tls_server.trust
    assert trust is not None
    assert httpx.get(f"{tls_server.api}/workers", verify=trust).status_code == 200
    # Its own page's origin is now https://...: accepted; the http:// twin is another origin.
    own = {"origin": tls_server.url}
    r = httpx.post(f"{tls_server.api}/workers/sleeper", json={}, headers=own, verify=trust)
    assert r.status_code == 201, r.text
    twin = {"origin": f"http://127.0.0.1:{tls_server.port}"}
    r = httpx.post(f"{tls_server.api}/workers/sleeper", json={}, headers=twin, verify=trust)
    assert r.status_code == 403
    assert "Tasky serving on https://" in tls_server.read_log()


def test_no_plain_http_on_the_tls_port(tls_server: TlsServer) -> None:
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{tls_server.port}/tasky/v1/workers", timeout=5)
    # Nor does a client that does not trust the test authority accept the certificate.
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{tls_server.api}/workers", timeout=5)


def test_tls_files_come_in_pairs(server_factory: Any, tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("not used")
    srv: ServerProcess = server_factory("--tls-cert", str(cert), start=False)
    with pytest.raises(RuntimeError, match="give both or neither"):
        srv.start()
    srv = server_factory("--tls-cert", str(cert), "--tls-key", str(tmp_path / "no"), start=False)
    with pytest.raises(RuntimeError, match="TLS file not found"):
        srv.start()


def test_plain_http_beyond_loopback_is_warned_about() -> None:
    warning = plain_http_warning(Settings(host="0.0.0.0", token="t"))
    assert warning is not None
    assert "--tls-cert" in warning and "--forwarded-allow-ips" in warning
    assert plain_http_warning(Settings(host="127.0.0.1")) is None
    assert plain_http_warning(Settings(host="::1")) is None
    tls = Settings(host="0.0.0.0", token="t", tls_cert=Path("c"), tls_key=Path("k"))
    assert plain_http_warning(tls) is None


def test_forwarded_headers_are_believed_from_named_proxies_only(
    server_factory: Any, tmp_path: Path
) -> None:
    """A local client must not pass itself off as having come over HTTPS through a proxy."""

    def through_proxy(srv: ServerProcess) -> int:
        headers = {
            "x-forwarded-proto": "https",
            "x-forwarded-for": "203.0.113.9",
            "origin": f"https://127.0.0.1:{srv.port}",
        }
        return httpx.post(f"{srv.api}/workers/sleeper", json={}, headers=headers).status_code

    assert through_proxy(server_factory()) == 403
    proxied = server_factory("--forwarded-allow-ips", "127.0.0.1", data_dir=tmp_path / "other")
    assert through_proxy(proxied) == 201
