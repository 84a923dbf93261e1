"""The submit path's cheaper pieces answer exactly as the Starlette pieces they replace.

``read_json`` reads the body from ``receive`` itself and a submit answers with ``Created``
(tasky/http/body.py, tasky/http/responses.py): same bytes, same errors, as ``request.body()``
and ``JSONResponse(..., 201, headers={"Location": ...})``.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from starlette.requests import ClientDisconnect, Request
from starlette.types import Message

from tasky.auth.gate import TokenGate
from tasky.auth.guard import Guard, _unlimited
from tasky.auth.policy import TABLE, Rule
from tasky.auth.policy import Scope as RuleScope
from tasky.auth.principal import ANONYMOUS, Principal, Role
from tasky.http.body import read_json
from tasky.http.responses import ApiError, Created, JSONResponse

LIMIT = 1000


def _request(messages: list[Message], length: int | None) -> Request:
    """A request whose ``receive`` hands out ``messages`` in order (as uvicorn would)."""
    headers = [(b"content-type", b"application/json")]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    scope: dict[str, Any] = {
        "type": "http",
        "method": "POST",
        "path": "/tasky/v1/workers/Noop",
        "headers": headers,
        "query_string": b"",
    }
    pending = list(messages)

    async def receive() -> Message:
        return pending.pop(0)

    return Request(scope, receive)


def _chunks(*parts: bytes) -> list[Message]:
    last = len(parts) - 1
    return [
        {"type": "http.request", "body": part, "more_body": i < last}
        for i, part in enumerate(parts)
    ]


BODIES = [
    _chunks(b'{"a": 1}'),
    _chunks(b'{"a": ', b"1", b"}"),
    _chunks(b"", b'{"a": 1}'),
    _chunks(b'{"a": 1}', b""),
    _chunks(b""),
    _chunks(b"  "),
    _chunks(b"[1, 2]"),
    # A message of another type between the chunks is skipped, as Starlette's stream skips it.
    [_chunks(b'{"a":', b"2}")[0], {"type": "http.unknown"}, _chunks(b"2}")[0]],
]


async def _outcome(request: Request) -> tuple[str, Any]:
    try:
        return "ok", await read_json(request, LIMIT, empty="EMPTY")
    except ApiError as exc:
        return "error", (exc.status_code, exc.message)
    except ClientDisconnect:
        return "disconnect", None


async def _starlette_outcome(request: Request) -> tuple[str, Any]:
    """What read_json answered when it read through ``request.body()``."""
    try:
        body = await request.body()
    except ClientDisconnect:
        return "disconnect", None
    if not body.strip():
        return "ok", "EMPTY"
    try:
        return "ok", orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return "error", (400, f"malformed JSON: {exc}")


@pytest.mark.parametrize("messages", BODIES)
async def test_body_read_as_starlette_reads_it(messages: list[Message]) -> None:
    size = sum(len(m.get("body", b"")) for m in messages)
    request = _request(messages, size)
    ours = await _outcome(request)
    theirs = await _starlette_outcome(_request(messages, size))
    assert ours == theirs
    assert ours[0] == "ok"
    # Read again (receive has nothing left): Starlette's kept body, as after request.body().
    assert await request.body() == b"".join(m.get("body", b"") for m in messages)


async def test_malformed_body_is_the_same_400() -> None:
    messages = _chunks(b"{not", b" json")
    ours = await _outcome(_request(messages, 9))
    assert ours == await _starlette_outcome(_request(messages, 9))
    assert ours[0] == "error"
    assert ours[1][0] == 400


async def test_disconnect_mid_body_is_client_disconnect() -> None:
    messages = [*_chunks(b'{"a":', b"1}")[:1], {"type": "http.disconnect"}]
    assert await _outcome(_request(messages, 7)) == ("disconnect", None)
    assert await _starlette_outcome(_request(messages, 7)) == ("disconnect", None)


async def test_declared_length_over_the_limit_is_413_before_reading() -> None:
    request = _request([], LIMIT + 1)  # receive would fail: nothing is read
    assert await _outcome(request) == (
        "error",
        (413, f"request body is larger than the limit of {LIMIT} bytes"),
    )


@pytest.mark.parametrize(
    ("content", "location"),
    [
        ({"TaskId": "0123456789abcdef0123456789abcdef"}, "/tasky/v1/tasks/0123"),
        ({"TaskId": "é"}, "/tasky/v1/tasks/x"),
        ({"ChainId": "c", "More": [1, None]}, "/tasky/v1/chains/c"),
    ],
)
def test_created_is_the_json_response_it_replaces(content: Any, location: str) -> None:
    ours = Created(content, location)
    theirs = JSONResponse(content, status_code=201, headers={"Location": location})
    assert ours.status_code == theirs.status_code == 201
    assert ours.body == theirs.body
    assert ours.raw_headers == theirs.raw_headers
    assert ours.background is theirs.background is None
    assert dict(ours.headers) == dict(theirs.headers)


# -- the auth guard's shortcuts (tasky/auth/guard.py) -------------------------------------------
_PRINCIPALS = [
    Principal(name=f"{role.name}-{limited}", role=role, workers=workers)
    for role in Role
    for limited, workers in (("all", None), ("noop", frozenset({"noop"})))
]
_RULES = sorted({r for r in TABLE.values() if r.role is not None}, key=repr)


@pytest.mark.parametrize("rule", _RULES, ids=repr)
async def test_unlimited_is_exactly_when_refusal_has_nothing_to_say(rule: Rule) -> None:
    """The guard skips ``_refusal`` when ``_unlimited`` holds: never for a refused caller."""
    guard = Guard(None, None, None, None, None)  # type: ignore[arg-type]  # _refusal alone
    for who in _PRINCIPALS:
        if rule.scope is RuleScope.TASK and who.workers is not None:
            continue  # asks the engine for the task's worker: never unlimited, never skipped
        refusal = await guard._refusal(who, rule, {"name": "other"})
        assert _unlimited(who, rule) == (refusal is None), (who, rule, refusal)


async def test_a_gate_without_tokens_answers_anonymous() -> None:
    """What the guard uses unawaited when the gate is off: the gate's own answer."""
    gate = TokenGate(None)
    gate._stored = 0  # started on a store without tokens
    assert not gate.enabled
    assert await gate.principal(None) is ANONYMOUS
    assert await gate.principal(b"Bearer anything") is ANONYMOUS
