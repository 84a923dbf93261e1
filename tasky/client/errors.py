"""Typed errors: every refusal of the server, and every failure to reach it, is one of these.

The server answers errors as ``{"Error": "..."}`` (422 adds ``Fields``, 409 may add ``Status``);
:func:`error_from_response` turns that shape into the matching exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from tasky.states import Status

if TYPE_CHECKING:
    from tasky.client.models import Chain, TaskStatus


class TaskyError(Exception):
    """The Tasky server refused or failed a request."""

    def __init__(
        self, message: str, *, status_code: int | None = None, body: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.body: dict[str, Any] = body or {}


class BadRequest(TaskyError):
    """The request was malformed (400) or too large (413)."""


class Unauthorized(TaskyError):
    """The server wants a token (``Authorization: Bearer``) and got none or a wrong one (401)."""


class Forbidden(TaskyError):
    """The token is valid but its role (or its workers) does not allow this call (403)."""


class TooManyRequests(TaskyError):
    """The token's rate limit is reached (429); ``retry_after`` is the server's wait, seconds."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = 429,
        body: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, body=body)
        self.retry_after = retry_after


class NotFound(TaskyError):
    """No such worker, task or path (404)."""


class Conflict(TaskyError):
    """The task's current status does not allow this (409); ``status`` is that status if known."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = 409,
        body: dict[str, Any] | None = None,
        status: Status | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, body=body)
        self.status = status


@dataclass(frozen=True, slots=True)
class FieldError:
    """One rejected config field: ``field`` is a dotted path (``(body)`` for the whole body)."""

    field: str
    message: str
    type: str = ""


class ValidationFailed(TaskyError):
    """The config (or body) did not validate (422); ``fields`` says what is wrong where."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = 422,
        body: dict[str, Any] | None = None,
        fields: list[FieldError] | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, body=body)
        self.fields = fields or []


class ServerError(TaskyError):
    """The server failed (5xx) or answered something this client does not understand."""


class ServerUnreachable(TaskyError):
    """No answer from the server at ``url`` (refused, timed out, dropped)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot reach the Tasky server at {url}: {reason}")
        self.url = url
        self.reason = reason


class BatchIncomplete(TaskyError):
    """A ``submit_many`` sent in several chunks stopped part-way: the chunks before the refused
    one were created (``task_ids``, in order), the refused chunk and those after it were not.
    ``error`` is the refusal (a :class:`ValidationFailed` counts its indexes from the first
    config given to ``submit_many``)."""

    def __init__(self, task_ids: list[str], error: TaskyError) -> None:
        super().__init__(
            f"{len(task_ids)} tasks were created, then a chunk was refused: {error.message}",
            status_code=error.status_code,
            body=error.body,
        )
        self.task_ids = task_ids
        self.error = error


class WaitTimeout(TaskyError, TimeoutError):
    """The task (or chain) did not finish within the time given to ``wait()``.

    ``last`` is the last status seen (a TaskStatus, or a Chain for ``wait_chain``).
    """

    def __init__(
        self, ident: str, timeout: float, last: TaskStatus | Chain | None, kind: str = "task"
    ) -> None:
        where = f" (still {last.status.value})" if last is not None else ""
        super().__init__(f"{kind} {ident} did not finish within {timeout:g} seconds{where}")
        self.task_id = ident
        self.timeout = timeout
        self.last = last


def _fields(raw: Any) -> list[FieldError]:
    if not isinstance(raw, list):
        return []
    return [
        FieldError(str(f.get("field", "")), str(f.get("message", "")), str(f.get("type", "")))
        for f in raw
        if isinstance(f, dict)
    ]


def _status(raw: Any) -> Status | None:
    try:
        return Status(raw) if isinstance(raw, str) else None
    except ValueError:
        return None


def error_from_response(response: httpx.Response) -> TaskyError:
    """The exception for a non-2xx answer (the body is read already)."""
    try:
        parsed = response.json()
    except ValueError:
        parsed = None
    body: dict[str, Any] = parsed if isinstance(parsed, dict) else {}
    code = response.status_code
    message = body.get("Error")
    if not isinstance(message, str) or not message:
        message = f"HTTP {code} {response.reason_phrase}".strip()
    if code == 401:
        return Unauthorized(message, status_code=code, body=body)
    if code == 403:
        return Forbidden(message, status_code=code, body=body)
    if code == 429:
        wait = response.headers.get("retry-after", "")
        return TooManyRequests(
            message,
            status_code=code,
            body=body,
            retry_after=float(wait) if wait.isdigit() else None,
        )
    if code == 404:
        return NotFound(message, status_code=code, body=body)
    if code == 409:
        return Conflict(message, status_code=code, body=body, status=_status(body.get("Status")))
    if code == 422:
        return ValidationFailed(
            message, status_code=code, body=body, fields=_fields(body.get("Fields"))
        )
    if 400 <= code < 500:
        return BadRequest(message, status_code=code, body=body)
    return ServerError(message, status_code=code, body=body)
