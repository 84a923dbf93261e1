"""Reading request bodies: size-limited, JSON only, with clear 400/413 errors."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

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
        body = await request.body()
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
