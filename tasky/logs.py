"""The server's log: text or JSON lines on stderr, with Tasky's lines and no library chatter.

Every line goes through one handler, so every line gets the same treatment: URL credentials
redacted (:class:`~tasky.redact.RedactUrls`), and in text mode control characters written out, so
a task's error cannot forge extra log lines or drive the terminal tailing the log. In JSON mode
each line is one object with ``time``, ``level``, ``logger``, ``message``, ``node`` and, where a
line is about a task or a request, the fields passed with ``extra=`` (see :data:`EXTRA_FIELDS`).
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any, TextIO

import orjson

from tasky.redact import RedactUrls

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

# Libraries that log routine work at INFO: httpx and httpcore every outbound request (HTTPCheck),
# uvicorn its start-up and (without --access-log) nothing Tasky wants, asyncio slow callbacks.
QUIET_LOGGERS = (
    "asyncio",
    "httpcore",
    "httpx",
    "multipart",
    "python_multipart",
    "uvicorn",
    "uvicorn.access",
    "uvicorn.error",
)

# Fields a record may carry (``extra=``) that JSON lines show as their own keys.
EXTRA_FIELDS = ("task_id", "worker", "client", "method", "path", "status", "duration_ms")

# C0 (tab aside) and C1 controls, DEL. JSON escapes C0 itself but leaves DEL and C1 raw.
_TEXT_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")
_JSON_RAW_CONTROL = re.compile(r"[\x7f-\x9f]")
_NAMED = {"\n": "\\n", "\r": "\\r"}


def task_fields(task_id: str, worker: str) -> dict[str, Any]:
    """The ``extra=`` of a line about one task."""
    return {"task_id": task_id, "worker": worker}


def one_line(text: str) -> str:
    """``text`` with newlines and other control characters written out (``\\n``, ``\\x1b``)."""
    return _TEXT_CONTROL.sub(lambda m: _NAMED.get(m[0], f"\\x{ord(m[0]):02x}"), text)


class TextFormatter(logging.Formatter):
    """The classic line; the message kept on its line (a logged exception still follows it)."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = one_line(record.message)
        return super().formatMessage(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log collectors."""

    def __init__(self, node: str) -> None:
        super().__init__()
        self._node = node

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _iso_time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "node": self._node,
        }
        for key in EXTRA_FIELDS:
            value = record.__dict__.get(key)
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        text = orjson.dumps(entry, default=str).decode()
        return _JSON_RAW_CONTROL.sub(lambda m: f"\\u{ord(m[0]):04x}", text)


def _iso_time(epoch: float) -> str:
    """UTC, millisecond precision: ``2026-01-31T12:00:00.123Z``."""
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch))
    return f"{whole}.{int(epoch % 1 * 1000):03d}Z"


def make_handler(log_format: str, node: str, stream: TextIO | None = None) -> logging.Handler:
    """The handler every line goes through: ``log_format`` lines on ``stream`` (stderr)."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"--log-format must be one of {', '.join(LOG_FORMATS)}")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(node) if log_format == "json" else TextFormatter())
    handler.addFilter(RedactUrls())
    return handler


def configure_logging(log_format: str, node: str) -> logging.Handler:
    """Route every logger to one stderr handler in ``log_format``; returns that handler.

    Replaces the root logger's handlers (so calling it twice does not double the lines) and
    quiets :data:`QUIET_LOGGERS` to WARNING. uvicorn must be given ``log_config=None``, or it
    installs handlers of its own that bypass this one.
    """
    handler = make_handler(log_format, node)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    return handler
