"""The search filters of ``GET /tasky/v1/tasks``: by (part of) an id, by creation time, by text in
the error. Each is read strictly: a bad value is a 400 that says what is wanted, never a filter
silently dropped or bent into something else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from tasky.echo import shown
from tasky.http.responses import ApiError

MAX_ERROR_TEXT = 200
# A time as seconds since 1970: a plain decimal (no sign, exponent, nan or inf), below year 5138.
_TIME = re.compile(r"[0-9]{1,11}(?:\.[0-9]{1,9})?", re.ASCII)
_HEX = re.compile(r"[0-9a-fA-F]{1,32}", re.ASCII)

# The query parameters, as the OpenAPI document lists them (and query.py accepts them).
QUERY_DOCS: tuple[tuple[str, str, str], ...] = (
    ("id", "string", "Only tasks whose id starts with this (1 to 32 hex digits)."),
    ("created_after", "number", "Only tasks created at or after this time (Unix seconds)."),
    ("created_before", "number", "Only tasks created before this time (Unix seconds)."),
    (
        "error",
        "string",
        f"Only tasks whose Error contains this text (1 to {MAX_ERROR_TEXT} characters, "
        "ASCII letters in any case).",
    ),
)


@dataclass(frozen=True, slots=True)
class TaskSearch:
    id_prefix: str | None = None
    created_after: float | None = None
    created_before: float | None = None
    error_contains: str | None = None

    def store_filters(self) -> dict[str, Any]:
        """The keyword arguments of ``Store.list_tasks`` that carry this search."""
        return {
            "id_prefix": self.id_prefix,
            "created_after": self.created_after,
            "created_before": self.created_before,
            "error_contains": self.error_contains,
        }


def _given(request: Request, name: str) -> str | None:
    raw = request.query_params.get(name)
    return None if raw is None or raw == "" else raw


def _time(request: Request, name: str) -> float | None:
    raw = _given(request, name)
    if raw is None:
        return None
    if not _TIME.fullmatch(raw):
        raise ApiError(
            400,
            f"query parameter {name} must be a time in seconds since 1970 (like 1767225600 or "
            f"1767225600.5), not {shown(raw)}",
        )
    return float(raw)


def _id_prefix(request: Request) -> str | None:
    raw = _given(request, "id")
    if raw is None:
        return None
    if not _HEX.fullmatch(raw):
        raise ApiError(
            400,
            f"query parameter id must be 1 to 32 hex digits (a task id or its start), not "
            f"{shown(raw)}",
        )
    return raw.lower()  # ids are written in lowercase


def _error_text(request: Request) -> str | None:
    raw = _given(request, "error")
    if raw is None:
        return None
    if len(raw) > MAX_ERROR_TEXT:
        raise ApiError(
            400,
            f"query parameter error must be at most {MAX_ERROR_TEXT} characters, not {len(raw)}",
        )
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in raw):
        raise ApiError(400, "query parameter error must not hold control characters")
    return raw


def task_search(request: Request) -> TaskSearch:
    """The search filters of this request (400 for a value that is not what they take)."""
    after = _time(request, "created_after")
    before = _time(request, "created_before")
    if after is not None and before is not None and after >= before:
        raise ApiError(400, "created_after must be earlier than created_before")
    return TaskSearch(_id_prefix(request), after, before, _error_text(request))
