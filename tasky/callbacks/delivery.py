"""Delivering callbacks: POST a finished task's or chain's record, signed, retried, durably.

The store is the queue of record. A callback row is written before its target exists, made due
when the target finishes, and every attempt is recorded with the next one's time, so a restart
picks up exactly where the last server stopped (delivery is at least once: an attempt that
reached the receiver just before a crash is sent again). Nodes sharing a store each claim what
they send: a due callback is taken by one node with a lease (the attempt's timeout and a margin),
so two nodes do not deliver it twice; if that node dies first, another sends it once the lease
ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson

from tasky import clock
from tasky.callbacks.signing import HEADER, sign
from tasky.net.addresses import OutboundPolicy
from tasky.net.outbound import async_client, explain
from tasky.redact import redact_url
from tasky.settings import Settings
from tasky.store.base import Store
from tasky.store.records import CallbackAttempt, CallbackRecord

log = logging.getLogger("tasky.callbacks")

# (kind, target id) -> the record to send, or None when the target is gone.
Render = Callable[[str, str], Awaitable[dict[str, Any] | None]]
# (kind, target id) -> whether the target has finished (None: it does not exist).
IsFinished = Callable[[str, str], Awaitable[bool | None]]

_BATCH = 32
_MAX_POLL = 1.0
_GROWTH = 3.0
# Keeps a misbehaving receiver's answer from filling the attempt list.
_MAX_ERROR = 200
# A claimed callback's lease beyond its attempt's timeout: rendering it and recording the
# attempt take a moment too.
_CLAIM_MARGIN = 30.0


class Deliverer:
    """Sends due callbacks in the background; ``finished`` makes a target's callback due."""

    def __init__(self, store: Store, settings: Settings, render: Render) -> None:
        assert settings.callback_secret, "callbacks are refused without a secret"
        self._store = store
        self._secret = settings.callback_secret
        self._attempts = settings.callback_attempts
        self._backoff = settings.callback_backoff
        self._timeout = settings.callback_timeout
        self._client = async_client(
            OutboundPolicy.parse(settings.outbound_allow), timeout=settings.callback_timeout
        )
        self._render = render
        # Targets with a callback that has not been made due: finishing other tasks costs no
        # write at all.
        self._waiting: set[tuple[str, str]] = set()
        self._wake = asyncio.Event()
        self._poll = min(_MAX_POLL, self._backoff)
        self._runner: asyncio.Task[None] | None = None
        self._arming: set[asyncio.Task[None]] = set()

    async def start(self, is_finished: IsFinished) -> None:
        """Resume: arm the callbacks whose target finished while no server was running."""
        for kind, target_id in await self._store.waiting_callbacks():
            done = await is_finished(kind, target_id)
            if done is None:
                await self._store.drop_callback(kind, target_id)
            elif done:
                await self._store.arm_callback(kind, target_id, clock.now())
            else:
                self._waiting.add((kind, target_id))
        self._runner = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        tasks = [*self._arming, *([self._runner] if self._runner else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._client.aclose()

    async def register(self, kind: str, target_id: str, url: str) -> None:
        """Store the callback before its target is created (so its finish cannot be missed)."""
        await self._store.add_callback(CallbackRecord(kind, target_id, url, clock.now()))
        self._waiting.add((kind, target_id))

    async def unregister(self, kind: str, target_id: str) -> None:
        """The target was refused after all: forget its callback."""
        self._waiting.discard((kind, target_id))
        await self._store.drop_callback(kind, target_id)

    def finished(self, kind: str, target_id: str) -> None:
        """A target finished (called in the event loop after its final status committed)."""
        key = (kind, target_id)
        if key not in self._waiting:
            return
        self._waiting.discard(key)
        task = asyncio.ensure_future(self._arm(kind, target_id))
        self._arming.add(task)
        task.add_done_callback(self._arming.discard)

    async def _arm(self, kind: str, target_id: str) -> None:
        try:
            await self._store.arm_callback(kind, target_id, clock.now())
        except Exception:
            # Still waiting in the store: the next start arms it.
            log.exception("could not schedule the callback of %s %s", kind, target_id)
        self._wake.set()

    async def _run(self) -> None:
        while True:  # until stop() cancels it
            try:
                await self._deliver_due()
            except Exception:
                log.exception("delivering callbacks failed; trying again shortly")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll)
            self._wake.clear()

    async def _deliver_due(self) -> None:
        # Each pass records its attempts before the next reads what is due: never two at once.
        now = clock.now()
        due = await self._store.claim_callbacks(now, _BATCH, now + self._timeout + _CLAIM_MARGIN)
        await asyncio.gather(*(self._attempt(callback) for callback in due))
        if len(due) == _BATCH:
            self._wake.set()  # more may be due: go again without waiting

    async def _attempt(self, callback: CallbackRecord) -> None:
        kind, target_id = callback.kind, callback.target_id
        stored = await self._store.get_callback(kind, target_id)
        done = len(stored.attempts) if stored is not None else 0
        record = await self._render(kind, target_id)
        if record is None:
            attempt = CallbackAttempt(clock.now(), error=f"the {kind} no longer exists")
            await self._store.record_callback_attempt(kind, target_id, attempt, "failed", None)
            return
        attempt = await self._send(callback, record, done + 1)
        ok = attempt.status_code is not None and 200 <= attempt.status_code < 300
        if ok:
            state, next_at = "delivered", None
        elif done + 1 >= self._attempts:
            state, next_at = "failed", None
            log.warning(
                "gave up the callback of %s %s to %s after %d attempts: %s",
                kind,
                target_id,
                redact_url(callback.url),
                done + 1,
                attempt.error or f"HTTP {attempt.status_code}",
            )
        else:
            state, next_at = "pending", clock.now() + self._backoff * _GROWTH**done
        await self._store.record_callback_attempt(kind, target_id, attempt, state, next_at)

    async def _send(
        self, callback: CallbackRecord, record: dict[str, Any], n: int
    ) -> CallbackAttempt:
        body = orjson.dumps(record)
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Tasky",
            HEADER: sign(self._secret, timestamp, body),
            "Tasky-Event": f"{callback.kind}.finished",
            # Stable across attempts: a receiver can drop a delivery it already processed.
            "Tasky-Delivery": f"{callback.kind}-{callback.target_id}",
            "Tasky-Attempt": str(n),
        }
        at = clock.now()
        try:
            url = httpx.URL(callback.url)
        except (httpx.InvalidURL, ValueError):  # a URL httpx cannot use after all
            return CallbackAttempt(at, error="invalid callback URL")
        try:
            # httpx's timeout bounds each read; this bounds the whole attempt, so a receiver
            # that drips its answer cannot hold a delivery slot.
            code = await asyncio.wait_for(self._post(url, body, headers), self._timeout)
        except TimeoutError:
            return CallbackAttempt(at, error=f"no answer from {url.host} in time")
        except httpx.HTTPError as exc:
            return CallbackAttempt(at, error=explain(exc, url)[:_MAX_ERROR])
        error = None if 200 <= code < 300 else f"answered {code}"
        return CallbackAttempt(at, code, error)

    async def _post(self, url: httpx.URL, body: bytes, headers: dict[str, str]) -> int:
        # Streamed and never read: only the status matters, and a huge answer costs nothing.
        async with self._client.stream("POST", url, content=body, headers=headers) as response:
            return response.status_code
