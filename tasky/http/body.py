"""Reading request bodies: size-limited, JSON only, with clear 400/413 errors."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request

from tasky.http.query import ascii_int
from tasky.http.responses import ApiError


async def read_json(request: Request, limit: int, *, empty: Any = None) -> Any:
    """The body parsed as JSON; ``empty`` when there is no body at all."""
    # Scanning the raw headers: building the Headers mapping would cost more than the body read.
    declared = next(
        (v.decode("latin-1") for k, v in request.scope["headers"] if k == b"content-length"), None
    )
    if declared is not None:
        length = ascii_int(declared)  # str.isdigit would pass "²", which int() refuses
        if length is None:
            raise ApiError(400, "invalid Content-Length header")
        if length > limit:
            raise ApiError(413, f"request body is larger than the limit of {limit} bytes")
        body = await _whole_body(request)
    else:
        chunks = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, f"request body is larger than the limit of {limit} bytes")
            chunks.append(chunk)
        body = b"".join(chunks)
    if not body.strip():
        return empty
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"malformed JSON: {exc}") from None


async def _whole_body(request: Request) -> bytes:
    """The body, read as ``request.body()`` reads it, without Starlette's stream in the way.

    Starlette reads through an async generator wrapped in ``aclosing``; reading the
    ``http.request`` messages straight from ``receive`` saves about 3 us of a submit's 35 us of
    Python (in-process, measured). The outcome is the same: the chunks joined, and
    ClientDisconnect when the client goes away first. The body is left where Starlette keeps
    it, so a later ``request.body()`` answers it instead of waiting on ``receive`` for ever.
    """
    chunks: list[bytes] = []
    while True:
        message = await request.receive()
        kind = message["type"]
        if kind == "http.request":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                request._body = body
                return body
        elif kind == "http.disconnect":
            raise ClientDisconnect()
