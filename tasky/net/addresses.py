"""Which addresses an outbound request may reach: the classifier and the allow-list.

A task's URL comes from whoever may submit tasks. Without this check, "GET http://127.0.0.1:6379"
or "http://169.254.169.254/latest/meta-data/" would make the server reach what only it can reach
(its own loopback services, the LAN, the cloud metadata service). So only globally reachable
unicast addresses are allowed, unless the operator allows more (``--outbound-allow``).

The tables are explicit rather than ``ipaddress``'s ``is_global``: that one changes between
Python versions and calls some addresses global that embed a private IPv4 address (``::10.0.0.1``,
``2002:a00:1::``).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_V4 = [
    ("0.0.0.0/8", "an unspecified ('this network') address"),
    ("10.0.0.0/8", "a private address"),
    ("100.64.0.0/10", "a shared (carrier-grade NAT) address"),
    ("127.0.0.0/8", "a loopback address"),
    ("169.254.0.0/16", "a link-local address"),
    ("172.16.0.0/12", "a private address"),
    ("192.0.0.0/24", "an IETF protocol address"),
    ("192.0.2.0/24", "a documentation address"),
    ("192.88.99.0/24", "a 6to4 relay address"),
    ("192.168.0.0/16", "a private address"),
    ("198.18.0.0/15", "a benchmarking address"),
    ("198.51.100.0/24", "a documentation address"),
    ("203.0.113.0/24", "a documentation address"),
    ("224.0.0.0/4", "a multicast address"),
    ("240.0.0.0/4", "a reserved or broadcast address"),
]
# Most specific first: ::1 and :: lie inside ::/96.
_V6 = [
    ("::/128", "an unspecified address"),
    ("::1/128", "a loopback address"),
    ("::ffff:0:0/96", "an IPv4-mapped address"),
    ("::/96", "an IPv4-compatible address"),
    ("64:ff9b:1::/48", "a local-use NAT64 address"),
    ("100::/64", "a discard address"),
    ("2001::/32", "a Teredo tunnel address"),
    ("2001:db8::/32", "a documentation address"),
    ("fc00::/7", "a unique local address"),
    ("fe80::/10", "a link-local address"),
    ("fec0::/10", "a site-local address"),
    ("ff00::/8", "a multicast address"),
]
_REFUSED: list[tuple[IPNetwork, str]] = [
    (ipaddress.ip_network(net), why) for net, why in (*_V4, *_V6)
]
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_HOST_NAME = re.compile(r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?\.?)+$")


def refusal(address: IPAddress) -> str | None:
    """Why ``address`` may not be reached (e.g. "a loopback address"), or None if it may."""
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        address = ipaddress.IPv6Address(str(address).partition("%")[0])
    for network, why in _REFUSED:
        if address.version == network.version and address in network:
            return why
    # Translation prefixes carry an IPv4 address: judge the address they lead to.
    if isinstance(address, ipaddress.IPv6Address):
        if address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
            inner = refusal(embedded)
            return f"a NAT64 address of {inner}" if inner else None
        if address.sixtofour is not None:
            inner = refusal(address.sixtofour)
            return f"a 6to4 address of {inner}" if inner else None
    return None


@dataclass(frozen=True, slots=True)
class OutboundPolicy:
    """What outbound requests may reach beyond the public internet: networks and host names."""

    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> OutboundPolicy:
        """From ``--outbound-allow`` entries: CIDRs (``10.1.0.0/16``), addresses or host names."""
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            name = entry.lower().rstrip(".")
            if not _HOST_NAME.match(name) or name.replace(".", "").isdigit():
                raise ValueError(
                    f"--outbound-allow: {raw!r} is neither a network (10.0.0.0/8, 127.0.0.1, "
                    "fd00::/8) nor a host name"
                )
            hosts.add(name)
        return cls(tuple(networks), frozenset(hosts))

    def entries(self) -> list[str]:
        """The entries :meth:`parse` reads back into this policy (for a task process)."""
        return [*(str(n) for n in self.networks), *sorted(self.hosts)]

    def allows_host(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.hosts

    def allows(self, address: IPAddress) -> bool:
        return any(address.version == n.version and address in n for n in self.networks)

    def refusal(self, host: str, address: IPAddress) -> str | None:
        """Why ``host``, resolved to ``address``, may not be reached; None if it may."""
        if self.allows_host(host) or self.allows(address):
            return None
        return refusal(address)


DEFAULT_POLICY = OutboundPolicy()
