"""The one HTTP client for requests Tasky makes on a task's behalf (HTTPCheck, callbacks).

The check happens where the connection is made, not before the request: the client's network
backend resolves the host itself, refuses the addresses the policy refuses (see
:mod:`tasky.net.addresses`) and connects to an address it has just checked. A DNS answer that
changes between a check and the connect (rebinding) therefore cannot slip through, and every
redirect hop, which opens its own connection, passes the same check. TLS and the Host header
still use the name. Environment proxies are ignored: a proxy would make the connect-time check
look at the proxy instead of the target.

Errors never tell an open port from a closed one on a refused target (it is never contacted),
and on an allowed one they say only that the connection failed.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Iterable
from typing import Any

import anyio
import httpcore
import httpx

from tasky.net.addresses import DEFAULT_POLICY, OutboundPolicy
from tasky.redact import RedactUrls

# At most this many checked addresses of one name are tried, each within the connect timeout.
_MAX_ADDRESSES = 4
_SCHEMES = ("http", "https")

AddrInfo = tuple[Any, Any, Any, Any, tuple[Any, ...]]

# httpx logs each request's URL, user:password included, at INFO (the server's log level).
logging.getLogger("httpx").addFilter(RedactUrls())


class OutboundRefused(httpx.TransportError):
    """The request was refused by policy: its target is not one Tasky may reach."""


def _literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def checked_addresses(host: str, infos: Iterable[AddrInfo], policy: OutboundPolicy) -> list[str]:
    """The resolved addresses of ``host`` the policy allows; OutboundRefused if there is none."""
    allowed: list[str] = []
    reasons: list[str] = []
    for info in infos:
        text = str(info[4][0])
        why = policy.refusal(host, ipaddress.ip_address(text))
        if why is None:
            if text not in allowed:
                allowed.append(text)
        else:
            reasons.append(why)
    if not allowed:
        verb = "is" if _literal(host) else "resolves to"
        why = reasons[0] if reasons else "no address"
        raise OutboundRefused(f"refused by policy: {host} {verb} {why}")
    return allowed[:_MAX_ADDRESSES]


class GuardedAsyncBackend(httpcore.AsyncNetworkBackend):
    """Connects only to addresses the policy allows, checked at connect time."""

    def __init__(
        self, policy: OutboundPolicy, inner: httpcore.AsyncNetworkBackend | None = None
    ) -> None:
        self._policy = policy
        self._inner = inner or httpcore.AnyIOBackend()

    async def _resolve(self, host: str, port: int, timeout: float | None) -> list[AddrInfo]:
        try:
            with anyio.fail_after(timeout):
                infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"could not resolve {host} in time") from None
        except OSError:
            raise httpcore.ConnectError(f"could not resolve {host}") from None
        return list(infos)

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = checked_addresses(host, await self._resolve(host, port, timeout), self._policy)
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise OutboundRefused("refused by policy: Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedBackend(httpcore.NetworkBackend):
    """The blocking twin of :class:`GuardedAsyncBackend`, for code running in threads."""

    def __init__(
        self, policy: OutboundPolicy, inner: httpcore.NetworkBackend | None = None
    ) -> None:
        self._policy = policy
        self._inner = inner or httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError:
            raise httpcore.ConnectError(f"could not resolve {host}") from None
        failure: Exception | None = None
        for address in checked_addresses(host, infos, self._policy):
            try:
                return self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise OutboundRefused("refused by policy: Unix sockets")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _check_scheme(request: httpx.Request) -> None:
    if request.url.scheme not in _SCHEMES:
        raise OutboundRefused(f"refused by policy: only http and https, not {request.url.scheme}")


class GuardedAsyncTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a guarded connection pool (no proxies, no Unix sockets)."""

    def __init__(self, policy: OutboundPolicy, *, verify: bool = True) -> None:
        # Not super().__init__: it would build a pool (and an SSL context) only to be replaced.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            network_backend=GuardedAsyncBackend(policy),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        _check_scheme(request)
        return await super().handle_async_request(request)


class GuardedTransport(httpx.HTTPTransport):
    def __init__(self, policy: OutboundPolicy, *, verify: bool = True) -> None:
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            network_backend=GuardedBackend(policy),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        _check_scheme(request)
        return super().handle_request(request)


def async_client(
    policy: OutboundPolicy = DEFAULT_POLICY,
    *,
    timeout: float = 10.0,
    follow_redirects: bool = False,
    max_redirects: int = 20,
    verify: bool = True,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` whose every connection, redirects included, is checked."""
    return httpx.AsyncClient(
        transport=GuardedAsyncTransport(policy, verify=verify),
        timeout=timeout,
        follow_redirects=follow_redirects,
        max_redirects=max_redirects,
        trust_env=False,
    )


def client(
    policy: OutboundPolicy = DEFAULT_POLICY,
    *,
    timeout: float = 10.0,
    follow_redirects: bool = False,
    max_redirects: int = 20,
    verify: bool = True,
) -> httpx.Client:
    """The blocking twin of :func:`async_client`."""
    return httpx.Client(
        transport=GuardedTransport(policy, verify=verify),
        timeout=timeout,
        follow_redirects=follow_redirects,
        max_redirects=max_redirects,
        trust_env=False,
    )


def explain(exc: httpx.HTTPError, url: httpx.URL) -> str:
    """A message for a failed request that names the host only (never credentials or ports'
    states): "refused by policy: ..." or "could not connect to HOST"."""
    host = url.host or "the server"
    if isinstance(exc, OutboundRefused):
        return str(exc)
    if isinstance(exc, httpx.UnsupportedProtocol):
        return "refused by policy: only http and https URLs"
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.ProxyError):
        return f"could not connect to {host}"
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer from {host} in time"
    if isinstance(exc, httpx.TooManyRedirects):
        return f"too many redirects from {host}"
    return f"invalid response from {host}"
