"""Ifconfig: the server's network interfaces, in the seed's output shape."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import psutil

from tasky.workers.base import Worker
from tasky.workers.context import TaskContext


def _prefix_length(netmask: str | None, family: int) -> int:
    if not netmask:
        return 32 if family == socket.AF_INET else 128
    try:
        return ipaddress.ip_network(f"0.0.0.0/{netmask}").prefixlen
    except ValueError:
        # IPv6 netmasks come as ffff:ffff:...; count the bits.
        return bin(int(ipaddress.IPv6Address(netmask))).count("1")


def interfaces() -> list[dict[str, str]]:
    found: list[dict[str, str]] = []
    for name, addresses in psutil.net_if_addrs().items():
        mac = next((a.address for a in addresses if a.family == psutil.AF_LINK), "")
        if mac == "00:00:00:00:00:00":
            mac = ""
        for addr in addresses:
            if addr.family not in (socket.AF_INET, socket.AF_INET6):
                continue
            ip = addr.address.split("%", 1)[0]
            found.append(
                {
                    "interface_name": name,
                    "ip_network": f"{ip}/{_prefix_length(addr.netmask, addr.family)}",
                    "mac_address": mac,
                }
            )
    return found


class Ifconfig(Worker):
    name = "Ifconfig"
    description = (
        "Ifconfig will return networking details from the server. "
        "No config is needed for this worker"
    )
    max_tasks = 10
    idempotent = True

    def perform(self, config: Any, task: TaskContext) -> dict[str, Any]:
        return {"Interfaces": interfaces()}
