"""The one settings object. Every field can come from a ``TASKY_*`` environment variable."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8888
    data_dir: Path = Path("tasky-data")
    worker_modules: list[str] = field(default_factory=list)
    config_files: list[Path] = field(default_factory=list)
    # Directories that file workers may read and write; default: ./tasky-files, a dedicated
    # directory, never the working directory (which holds the data directory and the config).
    roots: list[Path] = field(default_factory=lambda: [Path.cwd() / "tasky-files"])
    token: str | None = None
    max_body_bytes: int = 1 << 20
    # Tasks that may wait (Queued or Paused) per worker; a worker's max_queued overrides it.
    max_queued: int = 10_000
    # A chain's parameters and its definition, as JSON bytes; steps in one chain.
    max_chain_params_bytes: int = 64 << 10
    max_chain_definition_bytes: int = 256 << 10
    max_chain_steps: int = 1000
    max_log_lines: int = 10_000
    thread_pool_size: int = 32
    lease_seconds: float = 30.0
    # How long POST .../cancel waits for a running task to really stop before answering 202.
    cancel_wait_seconds: float = 2.0
    node_id: str = field(default_factory=lambda: f"{os.uname().nodename}:{os.getpid()}")

    @property
    def database_path(self) -> Path:
        return self.data_dir / "tasky.db"

    def check(self) -> None:
        """Refuse unsafe combinations before anything listens."""
        if not is_loopback(self.host) and not self.token:
            raise ValueError(
                f"refusing to listen on {self.host} without a token: set --token or TASKY_TOKEN, "
                "or listen on 127.0.0.1"
            )
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port out of range: {self.port}")
        data = Path(os.path.realpath(self.data_dir))
        for root in self.roots:
            real = Path(os.path.realpath(root))
            if real == data or real.is_relative_to(data):
                raise ValueError(f"the file root {root} lies inside the data directory {data}")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_addr(addr: str) -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT`` (loopback, unlike Go's all-interfaces default) or ``[v6]:PORT``."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"address must look like HOST:PORT or :PORT, not {addr!r}")
    return (host.strip("[]") or "127.0.0.1"), int(port)
