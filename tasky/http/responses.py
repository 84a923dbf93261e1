"""JSON responses (orjson) and the one error shape: ``{"Error": "..."}``."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class Created(JSONResponse):
    """201 with a JSON body and a Location: ``JSONResponse(content, 201, {"Location": ...})``
    byte for byte, its header list written out instead of derived.

    Response.__init__ goes through init_headers (a dict walk, a list of keys, two membership
    tests, three encodes); every submit answers this, so the list is built directly.
    """

    def __init__(self, content: Any, location: str) -> None:
        self.status_code = 201
        self.background = None
        self.body = orjson.dumps(content)
        self.raw_headers = [
            (b"location", location.encode("latin-1")),
            (b"content-length", str(len(self.body)).encode("latin-1")),
            (b"content-type", b"application/json"),
        ]


class ApiError(Exception):
    """An error the API answers with ``{"Error": message, ...extra}`` and ``status_code``."""

    def __init__(self, status_code: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.extra = extra


def error_response(status_code: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"Error": message, **extra}, status_code=status_code)
