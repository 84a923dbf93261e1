"""The Python client: ``Client`` (blocking) and ``AsyncClient`` (asyncio), built on httpx.

>>> from tasky import Client
>>> with Client("http://127.0.0.1:8888") as tasky:
...     task_id = tasky.submit("Sleeper", {"seconds": 2})
...     final = tasky.wait(task_id, timeout=60)
"""

from __future__ import annotations

from tasky.client._calls import DEFAULT_URL
from tasky.client.aio import AsyncClient
from tasky.client.errors import (
    BadRequest,
    BatchIncomplete,
    Conflict,
    FieldError,
    Forbidden,
    NotFound,
    ServerError,
    ServerUnreachable,
    TaskyError,
    TooManyRequests,
    Unauthorized,
    ValidationFailed,
    WaitTimeout,
)
from tasky.client.models import (
    AuditEntry,
    AuditPage,
    Chain,
    ChainDefinition,
    ChainPage,
    ChainStep,
    ChainSummary,
    CreatedToken,
    LogLine,
    LogPage,
    NodeInfo,
    Schedule,
    Task,
    TaskPage,
    TaskResult,
    TaskStatistics,
    TaskStatus,
    TaskSummary,
    TaskUpdated,
    TokenInfo,
    WorkerInfo,
    WorkerStatistics,
)
from tasky.client.sync import Client

__all__ = [
    "DEFAULT_URL",
    "AsyncClient",
    "AuditEntry",
    "AuditPage",
    "BadRequest",
    "BatchIncomplete",
    "Chain",
    "ChainDefinition",
    "ChainPage",
    "ChainStep",
    "ChainSummary",
    "Client",
    "Conflict",
    "CreatedToken",
    "FieldError",
    "Forbidden",
    "LogLine",
    "LogPage",
    "NodeInfo",
    "NotFound",
    "Schedule",
    "ServerError",
    "ServerUnreachable",
    "Task",
    "TaskPage",
    "TaskResult",
    "TaskStatistics",
    "TaskStatus",
    "TaskSummary",
    "TaskUpdated",
    "TaskyError",
    "TokenInfo",
    "TooManyRequests",
    "Unauthorized",
    "ValidationFailed",
    "WaitTimeout",
    "WorkerInfo",
    "WorkerStatistics",
]
