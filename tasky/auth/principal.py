"""The caller of one request, as the authentication layer found it.

The authentication middleware stores it in the ASGI scope's ``state``; everything after it
(authorization, stream caps, rate limits, the audit log) reads it from there, so no layer
parses the ``Authorization`` header a second time.
"""

from __future__ import annotations

import enum
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

_SCOPE_KEY = "tasky.principal"


class Role(enum.IntEnum):
    """Ordered powers: each role has every power of the roles below it."""

    viewer = 1
    operator = 2
    admin = 3


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: Role
    # An operator limited to these workers (lower-case names); None means every worker.
    workers: frozenset[str] | None = None

    def may_use_worker(self, worker: str) -> bool:
        return self.workers is None or worker.lower() in self.workers


# A server with no tokens at all trusts its loopback callers fully (the browser-borne
# requests are refused before this point by the request guard).
ANONYMOUS = Principal(name="anonymous", role=Role.admin)


def set_principal(scope: MutableMapping[str, Any], principal: Principal) -> None:
    scope.setdefault("state", {})[_SCOPE_KEY] = principal


def principal_of(scope: Any) -> Principal:
    """The request's principal; ANONYMOUS when authentication did not run (no tokens)."""
    state = scope.get("state") if isinstance(scope, dict) else None
    found = state.get(_SCOPE_KEY) if isinstance(state, dict) else None
    return found if isinstance(found, Principal) else ANONYMOUS
