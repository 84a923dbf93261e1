"""Tasky: run tasks on your servers through a REST API, a web page, a CLI and a Python client."""

from __future__ import annotations

__version__ = "0.1.0"

from tasky.workers.base import EmptyConfig, Worker, worker
from tasky.workers.context import AsyncTaskContext, TaskCancelled, TaskContext

__all__ = [
    "AsyncTaskContext",
    "EmptyConfig",
    "TaskCancelled",
    "TaskContext",
    "Worker",
    "__version__",
    "worker",
]
