"""The in-memory store's tables beside tasks: API tokens, the audit log, idempotency keys,
callbacks and schedules (a base of :class:`tasky.store.memory.MemoryStore`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from tasky.store.base import DuplicateId
from tasky.store.memory_data import MemoryData, json_copy, page
from tasky.store.records import (
    AuditPage,
    AuditRecord,
    CallbackAttempt,
    CallbackRecord,
    IdempotencyRecord,
    ScheduleRecord,
    TokenRecord,
)


class MemoryTables:
    def __init__(self, data: MemoryData) -> None:
        self._data = data

    # -- API tokens -------------------------------------------------------------------------------
    async def create_token(self, token: TokenRecord) -> bool:
        def op() -> bool:
            tokens = self._data.tokens
            if token.name in tokens or any(
                t.token_hash == token.token_hash for t in tokens.values()
            ):
                return False
            workers = None if token.workers is None else list(token.workers)
            tokens[token.name] = replace(token, workers=workers, last_used_at=None)
            return True

        return await self._data.write(op)

    async def revoke_token(self, name: str) -> bool:
        return await self._data.write(lambda: self._data.tokens.pop(name, None) is not None)

    async def touch_token(self, name: str, when: float) -> None:
        def op() -> None:
            token = self._data.tokens.get(name)
            if token is not None:
                token.last_used_at = when

        await self._data.write(op)

    async def token_by_hash(self, token_hash: str) -> TokenRecord | None:
        for token in self._data.tokens.values():
            if token.token_hash == token_hash:
                return _copy_token(token)
        return None

    async def list_tokens(self) -> list[TokenRecord]:
        return [_copy_token(t) for _, t in sorted(self._data.tokens.items())]

    async def count_tokens(self) -> int:
        return len(self._data.tokens)

    # -- audit log --------------------------------------------------------------------------------
    async def record_audit(self, entries: Sequence[AuditRecord]) -> None:
        def op() -> None:
            for entry in entries:
                self._data.audit_seq += 1
                self._data.audit.append(replace(entry, seq=self._data.audit_seq))

        await self._data.write(op)

    async def list_audit(
        self, *, limit: int = 100, cursor: int | None = None, descending: bool = False
    ) -> AuditPage:
        chosen, next_cursor = page(self._data.audit, _audit_seq, limit, cursor, descending)
        return AuditPage([replace(e) for e in chosen], next_cursor)

    async def prune_audit(self, before: float, limit: int) -> int:
        def op() -> int:
            # Oldest first by seq (the order they were recorded in).
            doomed = {e.seq for e in self._data.audit if e.at < before}
            doomed = set(sorted(doomed)[:limit])
            self._data.audit = [e for e in self._data.audit if e.seq not in doomed]
            return len(doomed)

        return await self._data.write(op)

    # -- idempotency keys -------------------------------------------------------------------------
    async def find_key(self, principal: str, key: str, now: float) -> IdempotencyRecord | None:
        found = self._data.keys.get((principal, key))
        return found if found is not None and found.expires_at > now else None

    async def prune_keys(self, before: float, limit: int) -> int:
        def op() -> int:
            expired = sorted(
                (k for k in self._data.keys.values() if k.expires_at < before),
                key=lambda k: k.expires_at,
            )[:limit]
            for k in expired:
                del self._data.keys[(k.principal, k.key)]
            return len(expired)

        return await self._data.write(op)

    # -- callbacks --------------------------------------------------------------------------------
    async def add_callback(self, callback: CallbackRecord) -> None:
        def op() -> None:
            key = (callback.kind, callback.target_id)
            if key in self._data.callbacks:
                raise DuplicateId(f"a callback of {callback.kind} {callback.target_id} exists")
            self._data.callbacks[key] = CallbackRecord(
                callback.kind, callback.target_id, callback.url, callback.created_at
            )

        await self._data.write(op)

    async def drop_callback(self, kind: str, target_id: str) -> None:
        await self._data.write(lambda: self._data.callbacks.pop((kind, target_id), None))

    async def arm_callback(self, kind: str, target_id: str, at: float) -> bool:
        def op() -> bool:
            callback = self._data.callbacks.get((kind, target_id))
            if callback is None or callback.state != "pending" or callback.next_at is not None:
                return False
            callback.next_at = at
            return True

        return await self._data.write(op)

    async def waiting_callbacks(self) -> list[tuple[str, str]]:
        return sorted(
            key
            for key, c in self._data.callbacks.items()
            if c.state == "pending" and c.next_at is None
        )

    async def due_callbacks(self, now: float, limit: int) -> list[CallbackRecord]:
        due = [
            c
            for c in self._data.callbacks.values()
            if c.state == "pending" and c.next_at is not None and c.next_at <= now
        ]
        due.sort(key=lambda c: c.next_at or 0.0)
        return [replace(c, attempts=[]) for c in due[:limit]]

    async def claim_callbacks(self, now: float, limit: int, until: float) -> list[CallbackRecord]:
        def op() -> list[CallbackRecord]:
            due = [
                c
                for c in self._data.callbacks.values()
                if c.state == "pending" and c.next_at is not None and c.next_at <= now
            ]
            due.sort(key=lambda c: c.next_at or 0.0)
            taken = [replace(c, attempts=[]) for c in due[:limit]]
            for callback in due[:limit]:
                callback.next_at = until
            return taken

        return await self._data.write(op)

    async def record_callback_attempt(
        self,
        kind: str,
        target_id: str,
        attempt: CallbackAttempt,
        state: str,
        next_at: float | None,
    ) -> None:
        def op() -> None:
            callback = self._data.callbacks.get((kind, target_id))
            if callback is not None:
                callback.attempts.append(replace(attempt))
                callback.state, callback.next_at = state, next_at

        await self._data.write(op)

    async def get_callback(self, kind: str, target_id: str) -> CallbackRecord | None:
        found = self._data.callbacks.get((kind, target_id))
        if found is None:
            return None
        return replace(found, attempts=[replace(a) for a in found.attempts])

    # -- schedules --------------------------------------------------------------------------------
    async def create_schedule(self, schedule: ScheduleRecord) -> bool:
        def op() -> bool:
            if schedule.name in self._data.schedules:
                return False
            self._data.schedules[schedule.name] = _copy_schedule(schedule)
            return True

        return await self._data.write(op)

    async def save_schedule(self, schedule: ScheduleRecord) -> None:
        def op() -> None:
            old = self._data.schedules.get(schedule.name)
            new = _copy_schedule(schedule)
            if old is not None:
                # The definition is replaced; the state (paused, last run) stays, and the next
                # due time too unless the timing itself changed.
                same_timing = (old.cron, old.interval, old.timezone) == (
                    new.cron,
                    new.interval,
                    new.timezone,
                )
                new = replace(
                    new,
                    created_at=old.created_at,
                    next_run=old.next_run if same_timing else new.next_run,
                    paused=old.paused,
                    last_run_at=old.last_run_at,
                    last_run_id=old.last_run_id,
                    last_error=old.last_error,
                )
            self._data.schedules[schedule.name] = new

        await self._data.write(op)

    async def get_schedule(self, name: str) -> ScheduleRecord | None:
        found = self._data.schedules.get(name)
        return None if found is None else _copy_schedule(found)

    async def list_schedules(self) -> list[ScheduleRecord]:
        return [_copy_schedule(s) for _, s in sorted(self._data.schedules.items())]

    async def delete_schedule(self, name: str) -> bool:
        return await self._data.write(lambda: self._data.schedules.pop(name, None) is not None)

    async def set_schedule_paused(self, name: str, paused: bool, next_run: float) -> bool:
        def op() -> bool:
            schedule = self._data.schedules.get(name)
            if schedule is None:
                return False
            if not paused:
                schedule.next_run = next_run
            schedule.paused = paused
            return True

        return await self._data.write(op)

    async def claim_schedule_run(
        self, name: str, due: float, next_run: float, run_id: str | None, at: float
    ) -> bool:
        def op() -> bool:
            schedule = self._data.schedules.get(name)
            if schedule is None or schedule.next_run != due or schedule.paused:
                return False
            schedule.next_run = next_run
            if run_id is not None:
                schedule.last_run_at, schedule.last_run_id = at, run_id
                schedule.last_error = None
            return True

        return await self._data.write(op)

    async def record_schedule_run(
        self, name: str, run_id: str | None, at: float, error: str | None
    ) -> None:
        def op() -> None:
            schedule = self._data.schedules.get(name)
            if schedule is None:
                return
            if run_id is not None:
                schedule.last_run_at, schedule.last_run_id = at, run_id
            schedule.last_error = error

        await self._data.write(op)


def _copy_token(token: TokenRecord) -> TokenRecord:
    return replace(token, workers=None if token.workers is None else list(token.workers))


def _copy_schedule(schedule: ScheduleRecord) -> ScheduleRecord:
    return replace(schedule, config=json_copy(schedule.config))


def _audit_seq(entry: AuditRecord) -> int:
    return entry.seq
