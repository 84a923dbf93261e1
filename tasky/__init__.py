"""Tasky: run tasks on your servers through a REST API, a web page, a CLI and a Python client."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tasky._version import __version__
from tasky.workers.base import EmptyConfig, Worker, worker
from tasky.workers.context import AsyncTaskContext, TaskCancelled, TaskContext
from tasky.workers.strict import AllowControl, ControlStr, Multiline, MultilineStr

if TYPE_CHECKING:
    from tasky.client import AsyncClient, Client

__all__ = [
    "AllowControl",
    "AsyncClient",
    "AsyncTaskContext",
    "Client",
    "ControlStr",
    "EmptyConfig",
    "Multiline",
    "MultilineStr",
    "TaskCancelled",
    "TaskContext",
    "Worker",
    "__version__",
    "worker",
]


def __getattr__(name: str) -> Any:
    # The clients load on first use: servers and worker processes import tasky but not httpx.
    if name in ("AsyncClient", "Client"):
        from tasky import client

        return getattr(client, name)
    raise AttributeError(f"module 'tasky' has no attribute {name!r}")
