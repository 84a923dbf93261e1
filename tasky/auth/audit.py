"""The audit log: who changed what, from where, with what outcome; and its retention.

Entries are written behind the answer, not before it: the entries of a few milliseconds
(FLUSH_DELAY) go to the store as one write that joins one of the store's group commits. Holding
each answer until its audit row is on disk would add a second commit to every submit; the price
is that the entries of the last 50 ms or so before a ``kill -9`` can be lost (the tasks themselves
cannot; docs/security.md).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Coroutine, MutableMapping
from typing import Any

from tasky.batches import drain, interval_for, repeat
from tasky.store.base import Store
from tasky.store.records import AuditRecord

log = logging.getLogger("tasky.audit")

_TARGET_KEY = "tasky.audit.target"
# How long an entry waits for others before they go to the store as one write. One write per
# event-loop iteration (call_soon) cost a lone client's every request its own flush: a task,
# two futures and three loop callbacks after each answer; a few milliseconds let a one-at-a-time
# client's requests share one.
FLUSH_DELAY = 0.005
# Rows deleted per pruning write: small, so submits never queue behind one long DELETE.
PRUNE_BATCH = 500
# Batches per pruning round; the next round picks up whatever is left.
_PRUNE_ROUNDS = 200


def note_target(scope: MutableMapping[str, Any], target: str) -> None:
    """A handler names what it changed when the path does not (a new token's name)."""
    scope.setdefault("state", {})[_TARGET_KEY] = target


def noted_target(scope: MutableMapping[str, Any]) -> str | None:
    state = scope.get("state")
    found = state.get(_TARGET_KEY) if isinstance(state, dict) else None
    return found if isinstance(found, str) else None


class AuditLog:
    """Buffers entries and writes them in the background; also runs other small writes there."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._rows: list[AuditRecord] = []
        self._pending: set[asyncio.Future[Any]] = set()

    def add(self, entry: AuditRecord) -> None:
        self._rows.append(entry)
        if len(self._rows) == 1:
            asyncio.get_running_loop().call_later(FLUSH_DELAY, self._flush)

    def later(self, write: Coroutine[Any, Any, Any]) -> None:
        """Run a store write without making the request wait for it (errors are logged)."""
        future = asyncio.ensure_future(write)
        self._pending.add(future)
        future.add_done_callback(self._done)

    def _flush(self) -> None:
        if self._rows:
            rows, self._rows = self._rows, []
            self.later(self._store.record_audit(rows))

    def _done(self, future: asyncio.Future[Any]) -> None:
        self._pending.discard(future)
        if not future.cancelled() and future.exception() is not None:
            log.error("an audit-log write failed", exc_info=future.exception())

    async def close(self) -> None:
        """Write what is buffered and wait for every write in flight (before the store closes)."""
        self._flush()
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)


async def prune_once(store: Store, retention_seconds: float, now: float | None = None) -> int:
    """Delete entries older than the retention, in small batches; returns how many went."""
    before = (time.time() if now is None else now) - retention_seconds
    return await drain(functools.partial(store.prune_audit, before), PRUNE_BATCH, _PRUNE_ROUNDS)


async def prune_forever(store: Store, retention_seconds: float) -> None:
    """The background pruner: at start-up, then ten times per retention period."""
    await repeat(
        interval_for(retention_seconds),
        lambda: prune_once(store, retention_seconds),
        log,
        "audit entries older than the retention",
    )
