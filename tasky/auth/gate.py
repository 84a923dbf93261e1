"""Authentication: is auth on, and which principal does an ``Authorization`` header name?

Auth is on once a bootstrap token is configured or any token is stored; a server with neither
keeps the loopback-open behaviour (every caller is the ANONYMOUS admin). Every request looks its
token up in the store by hash (an index read of microseconds): there is no cache, so a revoked or
expired token is refused by the very next request.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Coroutine
from typing import Any

from tasky.auth.principal import ANONYMOUS, Principal, Role
from tasky.auth.tokens import BOOTSTRAP_NAME, hash_token, is_expired, principal_for
from tasky.store.base import Store

# Longer headers are refused unhashed: no token we make is near this long.
_MAX_TOKEN = 512
# "Last used" is written at most this often per token: a write per request would cost the
# submit path a store write.
TOUCH_EVERY = 60.0

BOOTSTRAP = Principal(name=BOOTSTRAP_NAME, role=Role.admin)


class AuthFailed(Exception):
    """Missing or wrong token (Authorization: Bearer ...)."""

    def __init__(self, message: str = "missing or wrong token (Authorization: Bearer ...)"):
        super().__init__(message)
        self.message = message


Later = Callable[[Coroutine[Any, Any, Any]], None]


class TokenGate:
    def __init__(self, bootstrap: str | None) -> None:
        self._bootstrap = hash_token(bootstrap).encode() if bootstrap else None
        # Unknown until the store is open: counted as "tokens exist" so nothing is open early.
        self._stored: int | None = None
        self._store: Store | None = None
        self._later: Later | None = None
        self._touched: dict[str, float] = {}

    @property
    def has_bootstrap(self) -> bool:
        return self._bootstrap is not None

    @property
    def enabled(self) -> bool:
        return self._bootstrap is not None or self._stored is None or self._stored > 0

    async def start(self, store: Store, later: Later) -> None:
        self._store = store
        self._later = later
        self._stored = await store.count_tokens()

    async def tokens_changed(self) -> None:
        """Re-count after a create or revoke: the first stored token turns auth on at once."""
        if self._store is not None:
            self._stored = await self._store.count_tokens()

    async def principal(self, header: bytes | None) -> Principal:
        """The caller named by the ``Authorization`` header; AuthFailed when there is none."""
        if not self.enabled:
            return ANONYMOUS
        token = _bearer(header)
        digest = hash_token(token)
        if self._bootstrap is not None and hmac.compare_digest(digest.encode(), self._bootstrap):
            return BOOTSTRAP
        if self._store is None:
            raise AuthFailed("the server is starting")
        record = await self._store.token_by_hash(digest)
        if record is None:
            raise AuthFailed()
        now = time.time()
        if is_expired(record, now):
            raise AuthFailed(f"the token {record.name!r} has expired")
        self._touch(record.name, now)
        return principal_for(record)

    def _touch(self, name: str, now: float) -> None:
        last = self._touched.get(name)
        if (
            self._later is not None
            and self._store is not None
            and (last is None or now - last >= TOUCH_EVERY)
        ):
            self._touched[name] = now
            self._later(self._store.touch_token(name, now))


def _bearer(header: bytes | None) -> str:
    if not header or len(header) > _MAX_TOKEN:
        raise AuthFailed()
    scheme, _, value = header.partition(b" ")
    if scheme.lower() != b"bearer" or not value.strip():
        raise AuthFailed()
    try:
        return value.strip().decode("ascii")
    except UnicodeDecodeError:
        raise AuthFailed() from None
