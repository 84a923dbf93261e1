"""JSON responses (orjson) and the one error shape: ``{"Error": "..."}``."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


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
