"""Token management and the audit log under /tasky/v1 (admin only, see tasky.auth.policy).

Two rules keep a server from locking its admins out or opening itself by accident, when no
bootstrap token is configured: the first stored token must be an admin token (it turns auth on
at once), and the last admin token that still works cannot be revoked.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from tasky.auth import schemas
from tasky.auth.audit import note_target
from tasky.auth.gate import TokenGate
from tasky.auth.tokens import is_expired, make_token, token_view
from tasky.http.body import read_json
from tasky.http.doc import Doc
from tasky.http.query import cursor_param, int_param, only_documented
from tasky.http.responses import ApiError, JSONResponse
from tasky.http.validation import validation_error
from tasky.store.base import Store
from tasky.store.records import AuditRecord

PREFIX = "/tasky/v1"
MAX_PAGE = 1000


def _store(request: Request) -> Store:
    store: Store = request.app.state.engine.store
    return store


def _gate(request: Request) -> TokenGate:
    gate: TokenGate = request.app.state.auth_gate
    return gate


def audit_view(entry: AuditRecord) -> dict[str, Any]:
    return {
        "Seq": entry.seq,
        "Time": entry.at,
        "Token": entry.token,
        "Client": entry.client,
        "Method": entry.method,
        "Route": entry.route,
        "Target": entry.target,
        "Status": entry.status,
    }


async def list_tokens(request: Request) -> JSONResponse:
    now = time.time()
    found = await _store(request).list_tokens()
    return JSONResponse({"Tokens": [token_view(t, now) for t in found]})


async def create_token(request: Request) -> JSONResponse:
    raw = await read_json(request, request.app.state.settings.max_body_bytes)
    try:
        wanted = schemas.TokenCreate.model_validate(raw)
    except ValidationError as exc:
        raise validation_error(exc, "token") from None
    now = time.time()
    try:
        token, record = make_token(
            wanted.name, wanted.role, wanted.workers, wanted.expires_days, now
        )
    except ValueError as exc:
        raise ApiError(422, f"invalid token: {exc}", Fields=[]) from None
    name = record.name
    note_target(request.scope, f"token={name}")
    store, gate = _store(request), _gate(request)
    if not gate.has_bootstrap and wanted.role != "admin" and await store.count_tokens() == 0:
        raise ApiError(
            409,
            "the first token of a server without a bootstrap token must be an admin token: "
            "it turns authentication on, and someone must be able to manage tokens",
        )
    if not await store.create_token(record):
        raise ApiError(409, f"a token named {name!r} already exists")
    await gate.tokens_changed()
    return JSONResponse(
        {**token_view(record, now), "Token": token},
        status_code=201,
        # The one answer that carries a token: no cache may keep it.
        headers={"Cache-Control": "no-store"},
    )


async def revoke_token(request: Request) -> JSONResponse:
    name = request.path_params["name"]
    store, gate = _store(request), _gate(request)
    if not gate.has_bootstrap:
        now = time.time()
        tokens = await store.list_tokens()
        target = next((t for t in tokens if t.name == name), None)
        other_admins = [
            t for t in tokens if t.role == "admin" and t.name != name and not is_expired(t, now)
        ]
        if target is not None and target.role == "admin" and not other_admins:
            raise ApiError(
                409,
                f"{name!r} is the last admin token and the server has no bootstrap token: "
                "create another admin token first",
            )
    if not await store.revoke_token(name):
        raise ApiError(404, f"no token named {name!r}")
    await gate.tokens_changed()
    return JSONResponse({"Name": name, "Revoked": True})


async def list_audit(request: Request) -> JSONResponse:
    order = request.query_params.get("order", "asc")
    if order not in ("asc", "desc"):
        raise ApiError(400, "query parameter order must be asc or desc")
    page = await _store(request).list_audit(
        limit=int_param(request, "limit", 1, MAX_PAGE) or 100,
        cursor=cursor_param(request),
        descending=order == "desc",
    )
    return JSONResponse(
        {
            "Entries": [audit_view(e) for e in page.entries],
            "NextCursor": None if page.next_cursor is None else str(page.next_cursor),
        }
    )


def _docs() -> list[tuple[str, str, Any, Doc]]:
    tags = ("security",)
    return [
        (
            "GET",
            "/tokens",
            list_tokens,
            Doc("List API tokens (never the tokens themselves)", schemas.TokenList, tags=tags),
        ),
        (
            "POST",
            "/tokens",
            create_token,
            Doc(
                "Create an API token; the answer shows it once",
                schemas.TokenCreated,
                ok_code=201,
                body=schemas.TokenCreate,
                errors=(400, 409, 413, 422),
                tags=tags,
            ),
        ),
        (
            "DELETE",
            "/tokens/{name}",
            revoke_token,
            Doc(
                "Revoke an API token (refused at once)",
                schemas.TokenRevoked,
                errors=(404, 409),
                tags=tags,
            ),
        ),
        (
            "GET",
            "/audit",
            list_audit,
            Doc(
                "The audit log of state-changing calls, oldest first, one page at a time",
                schemas.AuditList,
                errors=(400,),
                query=(
                    ("limit", "integer", "Page size, 1 to 1000 (default 100)."),
                    ("cursor", "string", "NextCursor of the previous page."),
                    ("order", "string", "asc: oldest first (default), or desc: newest first."),
                ),
                tags=tags,
            ),
        ),
    ]


def auth_routes() -> list[BaseRoute]:
    return [
        Route(PREFIX + path, only_documented(handler, doc.query), methods=[method])
        for method, path, handler, doc in _docs()
    ]


def auth_docs() -> list[tuple[str, str, Doc]]:
    return [(method, PREFIX + path, doc) for method, path, _, doc in _docs()]
