"""The ``Idempotency-Key`` request header of submits and chain starts.

A client that retries a request whose answer it lost sends the same key again: the server
answers with what the first request created (200, not 201) instead of creating it twice. The key
is remembered per caller (token name) for ``Settings.idempotency_window`` seconds, together with
a fingerprint of the request, so reusing a key for another request is an error (422), not a
silent replay of something else.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.requests import Request

from tasky import clock
from tasky.auth.principal import principal_of
from tasky.echo import shown
from tasky.http.responses import ApiError, JSONResponse
from tasky.store.records import IdempotencyRecord

HEADER = "Idempotency-Key"
_RAW_HEADER = b"idempotency-key"
MAX_KEY = 255


def key_header(scope: Mapping[str, Any]) -> str | None:
    """The request's key, None without the header; 400 for an unusable one.

    A scan of the raw header list: the submit hot path pays no more when the header is absent.
    """
    found: bytes | None = None
    for name, value in scope["headers"]:
        if name == _RAW_HEADER:
            if found is not None:
                raise ApiError(400, f"send one {HEADER} header, not several")
            found = value
    if found is None:
        return None
    # Printable ASCII only: a key is echoed in errors and kept in the database.
    if not 1 <= len(found) <= MAX_KEY or any(not 0x20 <= b <= 0x7E for b in found):
        raise ApiError(
            400, f"the {HEADER} header must be 1 to {MAX_KEY} printable ASCII characters"
        )
    return found.decode("ascii")


def new_key(
    request: Request, key: str, target: str, body: Any, query: Any = None
) -> IdempotencyRecord:
    """The record this request would leave: ``target`` names what it creates (``worker:echo``,
    ``chain``, ``definition:nightly``), ``body`` and ``query`` are its parsed, relevant inputs."""
    canonical = orjson.dumps([target, body, query], option=orjson.OPT_SORT_KEYS)
    now = clock.now()
    return IdempotencyRecord(
        principal=principal_of(request.scope).name,
        key=key,
        fingerprint=hashlib.sha256(canonical).hexdigest(),
        target_id="",
        created_at=now,
        expires_at=now + request.app.state.settings.idempotency_window,
    )


def different_request(wanted: IdempotencyRecord) -> ApiError:
    """422: the key was first sent with another request."""
    return ApiError(
        422,
        f"the {HEADER} {shown(wanted.key)} was used for a different request (another "
        "worker, body or query parameters); use a new key for a new request",
        Fields=[],
    )


def replay(
    found: IdempotencyRecord, wanted: IdempotencyRecord, id_field: str, location: str
) -> JSONResponse:
    """The answer to a repeated key: the first request's id (200), or 422 if the request differs."""
    if found.fingerprint != wanted.fingerprint:
        raise different_request(wanted)
    return JSONResponse(
        {id_field: found.target_id},
        status_code=200,
        headers={"Location": location + found.target_id, "Idempotent-Replayed": "true"},
    )
