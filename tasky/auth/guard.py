"""The one middleware that authenticates, authorizes, rate-limits and audits every request.

It finds the route a request is for (as Starlette will), looks it up in the authorization table
(tasky.auth.policy), and only then lets the request through. A served route that the table lacks
is refused: forgetting a route closes it instead of opening it.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tasky.auth.audit import AuditLog, noted_target
from tasky.auth.gate import AuthFailed, TokenGate
from tasky.auth.policy import Rule, rule_for
from tasky.auth.policy import Scope as RuleScope
from tasky.auth.principal import ANONYMOUS, Principal, set_principal
from tasky.auth.ratelimit import RateLimiter
from tasky.engine.errors import NotFound
from tasky.http.responses import error_response
from tasky.store.records import AuditRecord

_SUBMIT = "/tasky/v1/workers/"
_TASKS = "/tasky/v1/tasks/"
_STATUS = "/status"
_READS = frozenset({"GET", "HEAD", "OPTIONS"})
_TARGET_MAX = 300


class Guard:
    """ASGI middleware; ``starlette`` is the app whose routes it mirrors."""

    def __init__(
        self,
        app: ASGIApp,
        starlette: Starlette,
        gate: TokenGate,
        audit: AuditLog,
        limiter: RateLimiter | None,
    ) -> None:
        self._app = app
        self._starlette = starlette
        self._gate = gate
        self._audit = audit
        self._limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        route, params = self._route(scope)
        rule = rule_for(scope["method"], route) if route is not None else None
        if route is not None and rule is None:
            await _refuse(scope, receive, send, 403, f"the route {route} is not open to anyone")
            return
        if rule is not None and rule.role is None:  # public: the web page's files
            await self._app(scope, receive, send)
            return
        if not self._gate.enabled:  # no token anywhere: what gate.principal answers, unawaited
            principal = ANONYMOUS
        else:
            try:
                principal = await self._gate.principal(_header(scope, b"authorization"))
            except AuthFailed as exc:
                headers = {"WWW-Authenticate": "Bearer"}
                await _refuse(scope, receive, send, 401, exc.message, headers)
                return
        set_principal(scope, principal)
        if self._limiter is not None:
            wait = self._limiter.wait(principal.name)
            if wait > 0:
                headers = {"Retry-After": RateLimiter.retry_after(wait)}
                await _refuse(scope, receive, send, 429, "too many requests", headers)
                return
        if rule is None or route is None:  # no such path or method: Starlette says 404 / 405
            await self._app(scope, receive, send)
            return
        refusal = (
            None  # the common case, decided without the coroutine _refusal costs (about 1 us)
            if _unlimited(principal, rule)
            else await self._refusal(principal, rule, params)
        )
        audited = scope["method"] not in _READS
        if not audited:
            if refusal is not None:
                await _refuse(scope, receive, send, 403, refusal)
            else:
                await self._app(scope, receive, send)
            return
        await self._audited(scope, receive, send, principal, rule, route, params, refusal)

    def _route(self, scope: Scope) -> tuple[str | None, dict[str, Any]]:
        """The route path (as the table spells it) and path parameters, or None: no route."""
        path: str = scope["path"]
        method = scope["method"]
        # The hot path (submit, status) has one fixed shape each: a string check finds it.
        if method == "POST" and path.startswith(_SUBMIT):
            name = path[len(_SUBMIT) :]
            if name and "/" not in name:
                return _SUBMIT + "{name}", {"name": name}
        elif method == "GET" and path.startswith(_TASKS) and path.endswith(_STATUS):
            task_id = path[len(_TASKS) : -len(_STATUS)]
            if task_id and "/" not in task_id:
                return _TASKS + "{id}" + _STATUS, {"id": task_id}
        for candidate in self._starlette.routes:
            match, child = candidate.matches(scope)
            if match is Match.FULL:
                found: str = getattr(candidate, "path", "")
                return found, dict(child.get("path_params", {}))
        return None, {}

    async def _refusal(self, who: Principal, rule: Rule, params: dict[str, Any]) -> str | None:
        """Why ``who`` may not call the route, or None when it may."""
        assert rule.role is not None
        if who.role < rule.role:
            return (
                f"the token {who.name!r} has the {who.role.name} role; "
                f"this needs {rule.role.name} or above"
            )
        if who.workers is None or rule.scope is RuleScope.NONE:
            return None
        allowed = ", ".join(sorted(who.workers))
        if rule.scope is RuleScope.ALL_WORKERS:
            return (
                f"the token {who.name!r} is limited to the workers {allowed}; "
                "a chain may run any worker"
            )
        if rule.scope is RuleScope.WORKER:
            worker: str | None = str(params.get("name", ""))
        else:
            worker = await self._worker_of_task(str(params.get("id", "")))
        if worker is None or who.may_use_worker(worker):  # no such task: the handler says 404
            return None
        return f"the token {who.name!r} is limited to the workers {allowed}, not {worker}"

    async def _worker_of_task(self, task_id: str) -> str | None:
        engine = self._starlette.state.engine
        try:
            record = await engine.get(task_id)
        except NotFound:
            return None
        worker: str = record.worker
        return worker

    async def _audited(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        who: Principal,
        rule: Rule,
        route: str,
        params: dict[str, Any],
        refusal: str | None,
    ) -> None:
        status = 500
        location = ""

        async def watching(message: Message) -> None:
            nonlocal status, location
            if message["type"] == "http.response.start":
                status = message["status"]
                location = _header(message, b"location").decode("latin-1")
            await send(message)

        try:
            if refusal is not None:
                await _refuse(scope, receive, watching, 403, refusal)
            else:
                await self._app(scope, receive, watching)
        finally:
            client = scope.get("client")
            self._audit.add(
                AuditRecord(
                    at=time.time(),
                    token=who.name,
                    client=client[0] if client else "",
                    method=scope["method"],
                    route=route,
                    target=_target(scope, rule, params, location),
                    status=status,
                )
            )


def _unlimited(who: Principal, rule: Rule) -> bool:
    """``who`` may call the route whatever its parameters: :meth:`Guard._refusal` says None."""
    return (
        rule.role is not None
        and who.role >= rule.role
        and (who.workers is None or rule.scope is RuleScope.NONE)
    )


def _target(scope: Scope, rule: Rule, params: dict[str, Any], location: str) -> str:
    parts = [f"{rule.target or key}={value}" for key, value in params.items()]
    if location:  # what a create made: /tasky/v1/tasks/ID, /tasky/v1/chains/ID
        kind, _, created = location.rstrip("/").rpartition("/")
        parts.append(f"{kind.rpartition('/')[2].rstrip('s')}={created}")
    noted = noted_target(scope)
    if noted:
        parts.append(noted)
    # Path parameters are the caller's text: bounded, and no control characters in the log.
    text = " ".join(parts)[:_TARGET_MAX]
    if text.isprintable():  # nearly always: one C call instead of one per character
        return text
    return "".join(c if c.isprintable() else "?" for c in text)


def _header(holder: Any, name: bytes) -> bytes:
    for key, value in holder.get("headers", []):
        if key.lower() == name:
            found: bytes = value
            return found
    return b""


async def _refuse(
    scope: Scope,
    receive: Receive,
    send: Send,
    status: int,
    message: str,
    headers: dict[str, str] | None = None,
) -> None:
    response = error_response(status, message)
    response.headers.update(headers or {})
    await response(scope, receive, send)
