"""JSON responses (orjson) and the one error shape: ``{"Error": "..."}``, with ``Fields`` when
a request fails validation (422)."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import ValidationError
from starlette.responses import Response

from tasky.echo import clip


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class ApiError(Exception):
    """An error the API answers with ``{"Error": message, ...extra}`` and ``status_code``."""

    def __init__(self, status_code: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.extra = extra


def error_response(status_code: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"Error": message, **extra}, status_code=status_code)


# A config with thousands of bad keys gets this many named; field names and messages are clipped.
MAX_FIELD_ERRORS = 20


def validation_error(exc: ValidationError, what: str = "config") -> ApiError:
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    fields = [
        {
            "field": clip(".".join(str(p) for p in err["loc"]) or "(body)", 100),
            "message": clip(err["msg"], 300),
            "type": err["type"],
        }
        for err in errors[:MAX_FIELD_ERRORS]
    ]
    summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    if len(errors) > MAX_FIELD_ERRORS:
        summary += f"; and {len(errors) - MAX_FIELD_ERRORS} more"
    return ApiError(422, f"invalid {what}: {summary}", Fields=fields)
