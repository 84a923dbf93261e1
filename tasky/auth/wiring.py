"""How authentication, authorization, the audit log and the rate limit plug into the app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from starlette.applications import Starlette
from starlette.types import ASGIApp

from tasky.auth.audit import AuditLog, prune_forever
from tasky.auth.gate import TokenGate
from tasky.auth.guard import Guard
from tasky.auth.policy import rule_for
from tasky.auth.ratelimit import RateLimiter
from tasky.auth.routes import auth_docs
from tasky.engine import Engine
from tasky.settings import Settings
from tasky.store.base import Store

log = logging.getLogger("tasky.auth")


def protect(app: ASGIApp, starlette: Starlette, settings: Settings, store: Store) -> ASGIApp:
    """Wrap ``app`` (which ends in ``starlette``) in the guard; start and stop its helpers."""
    gate = TokenGate(settings.token)
    audit = AuditLog(store)
    limiter = RateLimiter(settings.rate_limit) if settings.rate_limit > 0 else None
    state = starlette.state
    state.auth_gate = gate
    state.extra_docs.extend(auth_docs())
    pruner: list[asyncio.Task[None]] = []

    async def start(engine: Engine) -> None:
        await gate.start(store, audit.later)
        if not gate.enabled:
            log.warning(
                "no API token: every caller is an admin (fine on loopback for one user; "
                "create one with tasky token create --role admin)"
            )
        if settings.audit_retention_days > 0:
            retention = settings.audit_retention_days * 86400.0
            pruner.append(asyncio.create_task(prune_forever(store, retention)))

    async def stop(engine: Engine) -> None:
        for task in pruner:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await audit.close()

    state.startup_hooks.append(start)
    state.shutdown_hooks.append(stop)
    return Guard(app, starlette, gate, audit, limiter)


_ERROR = {"$ref": "#/components/schemas/ErrorBody"}
_ACCESS_ERRORS = {
    "401": "Missing, wrong, revoked or expired token",
    "403": "The token's role (or its workers) does not allow this",
    "429": "The token's rate limit is reached (see Retry-After)",
}


def document_access(document: dict[str, Any]) -> None:
    """Add each operation's least role (from the one table) and the answers of the guard."""
    document["security"] = [{"bearer": []}]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            rule = rule_for(method.upper(), path)
            if rule is None or rule.role is None:
                continue
            operation["x-tasky-role"] = rule.role.name
            operation["description"] = f"Needs a token with the {rule.role.name} role or above."
            for code, text in _ACCESS_ERRORS.items():
                operation["responses"].setdefault(
                    code,
                    {"description": text, "content": {"application/json": {"schema": _ERROR}}},
                )
