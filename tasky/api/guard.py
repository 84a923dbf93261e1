"""The request guard: the outermost ASGI layer, refusing what a browser could be tricked into.

Any web page the user opens can make the browser send "simple" requests (a form post, a
``no-cors`` fetch) to a loopback port, and a DNS-rebinding page can even read the answers. So,
before any route or token check runs:

- ``Host`` must be a name this server answers to (421 otherwise): a rebinding page reaches us
  under its own name, never under ours.
- A state-changing request (anything but GET/HEAD/OPTIONS) carrying a foreign ``Origin``, or
  marked ``Sec-Fetch-Site: cross-site``/``same-site`` by the browser, is refused (403).
- A request with a body must declare ``Content-Type: application/json`` (415): browsers cannot
  send that type across origins without a CORS preflight, which this server never grants.

It reads each request's headers once, with no allocation on the accepted path beyond that.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from tasky.http.responses import error_response
from tasky.settings import Settings, is_loopback

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_CROSS_SITE = frozenset({b"cross-site", b"same-site"})
_JSON = "application/json"
# Accepted raw Host values are remembered so the hot path is one dict lookup; a cap keeps a
# client cycling through ports from growing it without bound.
_HOST_CACHE_SIZE = 256

_JSON_HINT = (
    "request bodies must be JSON: send the header 'Content-Type: application/json' "
    "(curl: -H 'Content-Type: application/json')"
)


@dataclass(frozen=True, slots=True)
class HostPolicy:
    """The names the server answers to."""

    names: frozenset[str]
    # Bound to every interface: any IP literal is accepted as well. An IP literal cannot be a
    # DNS-rebinding attack (that needs a name the attacker controls), and the server cannot
    # know every address a NAT or a new interface gives it.
    any_ip: bool

    def accepts(self, name: str) -> bool:
        if name in self.names:
            return True
        return self.any_ip and _ip_literal(name) is not None


def host_policy(settings: Settings) -> HostPolicy:
    bound = _canonical_name(settings.host.strip("[]").lower())
    names = {bound}
    names.update(_canonical_name(_split_host(h.lower())[0]) for h in settings.allowed_hosts)
    unspecified = _ip_literal(bound)
    any_ip = unspecified is not None and unspecified.is_unspecified
    if any_ip or is_loopback(bound):
        names.update({"localhost", "127.0.0.1", "::1"})
    if any_ip:
        names.add(socket.gethostname().lower())
    names.discard("")
    return HostPolicy(frozenset(names), any_ip)


def canonical_origin(origin: str) -> str | None:
    """``scheme://name:port`` with the default port filled in; None when it is not an origin."""
    scheme, sep, rest = origin.strip().lower().partition("://")
    if not sep or scheme not in _DEFAULT_PORTS or "/" in rest.rstrip("/"):
        return None
    name, port = _split_host(rest.rstrip("/"))
    if not name or port == -1:
        return None
    return f"{scheme}://{_canonical_name(name)}:{port or _DEFAULT_PORTS[scheme]}"


class RequestGuard:
    """Pure ASGI middleware; see the module docstring for what it refuses and why."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self._app = app
        self._hosts = host_policy(settings)
        origins = set()
        for origin in settings.allowed_origins:
            canonical = canonical_origin(origin)
            if canonical is None:
                raise ValueError(f"--allowed-origin must look like https://name[:port]: {origin!r}")
            origins.add(canonical)
        self._origins = frozenset(origins)
        self._known_hosts: set[bytes] = set()  # raw Host values already accepted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        host = origin = content_type = fetch_site = None
        has_body = False
        hosts = 0
        for name, value in scope["headers"]:
            if name == b"host":
                host = value
                hosts += 1
            elif name == b"origin":
                origin = value
            elif name == b"content-type":
                content_type = value
            elif name == b"content-length":
                has_body = value.strip() not in (b"0", b"")
            elif name == b"transfer-encoding":
                has_body = True
            elif name == b"sec-fetch-site":
                fetch_site = value
        # Two Host headers: parts of the stack could read different ones. Refuse the ambiguity.
        problem = self._check_host(host) if hosts < 2 else (400, "more than one Host header")
        if problem is None and scope["method"] not in _SAFE_METHODS:
            problem = self._check_origin(scope["scheme"], host, origin, fetch_site)
            if problem is None:
                problem = _check_body_type(content_type, has_body)
        if problem is not None:
            status, message = problem
            await error_response(status, message)(scope, receive, send)
            return
        await self._app(scope, receive, send)

    def _check_host(self, raw: bytes | None) -> tuple[int, str] | None:
        if raw is None:
            return 400, "the request has no Host header"
        if raw in self._known_hosts:
            return None
        text = raw.decode("latin-1").lower()
        name, port = _split_host(text)
        name = _canonical_name(name)
        if port == -1 or not name:
            return 400, f"malformed Host header: {text!r}"
        if not self._hosts.accepts(name):
            return 421, (
                f"this server does not answer to the name {name!r}: use one of its own names "
                "(e.g. 127.0.0.1), or let it answer to this one with --allowed-host / "
                "TASKY_ALLOWED_HOSTS"
            )
        if len(self._known_hosts) < _HOST_CACHE_SIZE:
            self._known_hosts.add(raw)
        return None

    def _check_origin(
        self, scheme: str, host: bytes | None, origin: bytes | None, fetch_site: bytes | None
    ) -> tuple[int, str] | None:
        if origin is None and fetch_site not in _CROSS_SITE:
            return None  # not from a browser page (curl, the CLI, the client) or same-origin
        given = origin.decode("latin-1") if origin is not None else ""
        canonical = canonical_origin(given)
        if canonical is not None and canonical in self._origins:
            return None
        if fetch_site not in _CROSS_SITE and canonical is not None and host is not None:
            own = canonical_origin(f"{scheme}://{host.decode('latin-1')}")
            if canonical == own:
                return None
        return 403, (
            f"cross-site request refused: a page from {given or 'another site'} may not change "
            "this server. Use its own page (/tasky/ui), or allow that origin with "
            "--allowed-origin / TASKY_ALLOWED_ORIGINS"
        )


def _check_body_type(content_type: bytes | None, has_body: bool) -> tuple[int, str] | None:
    if content_type is None:
        return (415, _JSON_HINT) if has_body else None
    if content_type == b"application/json":  # what every client of ours sends: no parsing
        return None
    media = content_type.decode("latin-1").partition(";")[0].strip().lower()
    return None if media == _JSON else (415, _JSON_HINT)


def _split_host(text: str) -> tuple[str, int | None]:
    """``name[:port]`` or ``[v6][:port]`` -> (name, port or None); port -1 when malformed."""
    if text.startswith("["):
        name, bracket, rest = text[1:].partition("]")
        if not bracket:
            return name, -1
        if not rest:
            return name, None
        return name, _port(rest[1:]) if rest.startswith(":") else -1
    name, colon, port = text.rpartition(":")
    if not colon:
        return text, None
    if ":" in name:  # a bare IPv6 literal (not valid in Host, but harmless to read)
        return text, None
    return name, _port(port)


def _port(text: str) -> int:
    return int(text) if text.isdigit() and 0 < int(text) < 65536 else -1


def _ip_literal(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


def _canonical_name(name: str) -> str:
    """IP literals in their one canonical spelling (``0:0::1`` is ``::1``); names as given."""
    if name and (name[0].isdigit() or ":" in name):
        address = _ip_literal(name)
        if address is not None:
            return str(address)
    return name.rstrip(".")
