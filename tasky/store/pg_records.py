"""The PostgreSQL store's records beside tasks: API tokens, the audit log, idempotency keys,
callbacks and schedules (the parts of ``tasky.store.base.Store`` that no task operation needs).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tasky.store.pg_database import Conn, PgDatabase, clean, json_text, read_page
from tasky.store.records import (
    AuditPage,
    AuditRecord,
    CallbackAttempt,
    CallbackRecord,
    IdempotencyRecord,
    ScheduleRecord,
    TokenRecord,
)
from tasky.store.sql_rows import row_to_audit, row_to_schedule, row_to_token

_TOKEN_COLUMNS = "name, token_hash, role, workers, created_at, expires_at, last_used_at"  # noqa: S105
_AUDIT_COLUMNS = "seq, at, token, client, method, route, target, status"
_KEY_COLUMNS = "principal, key, fingerprint, target_id, created_at, expires_at"
_CALLBACK_COLUMNS = "kind, target_id, url, created_at, state, next_at"
_SCHEDULE_COLUMNS = (
    'name, worker, chain, config, cron, "interval", timezone, catch_up, next_run, created_at, '
    "paused, source, last_run_at, last_run_id, last_error"
)
_SCHEDULE_INSERT = f"INSERT INTO schedules ({_SCHEDULE_COLUMNS}) VALUES ({', '.join(['%s'] * 15)})"


async def claim_key(conn: Conn, key: IdempotencyRecord) -> IdempotencyRecord | None:
    """Inside a transaction: the principal's unexpired record of ``key`` if there is one;
    otherwise ``key`` is recorded (replacing an expired one) and None returned.

    The upsert locks the key's row, so of two transactions sending one key at once the second
    waits for the first, then finds its record: one of them creates what the key names.
    """
    cursor = await conn.execute(
        f"INSERT INTO idempotency_keys ({_KEY_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (principal, key) DO UPDATE SET fingerprint = excluded.fingerprint, "
        "target_id = excluded.target_id, created_at = excluded.created_at, "
        "expires_at = excluded.expires_at "
        "WHERE idempotency_keys.expires_at <= excluded.created_at RETURNING 1",
        (key.principal, key.key, key.fingerprint, key.target_id, key.created_at, key.expires_at),
    )
    if await cursor.fetchone() is not None:
        return None
    row = await (
        await conn.execute(
            f"SELECT {_KEY_COLUMNS} FROM idempotency_keys WHERE principal = %s AND key = %s",
            (key.principal, key.key),
        )
    ).fetchone()
    assert row is not None  # the upsert found it and kept it locked
    return IdempotencyRecord(*row)


class RecordsMixin:
    """Tokens, audit log, idempotency keys, callbacks and schedules of :class:`PostgresStore`."""

    _db: PgDatabase

    # -- API tokens -----------------------------------------------------------------------------
    async def create_token(self, token: TokenRecord) -> bool:
        return (
            await self._db.execute(
                "INSERT INTO tokens (name, token_hash, role, workers, created_at, expires_at) "
                "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (
                    token.name,
                    token.token_hash,
                    token.role,
                    None if token.workers is None else json_text(token.workers),
                    token.created_at,
                    token.expires_at,
                ),
            )
            == 1
        )

    async def revoke_token(self, name: str) -> bool:
        return await self._db.execute("DELETE FROM tokens WHERE name = %s", (name,)) > 0

    async def touch_token(self, name: str, when: float) -> None:
        await self._db.execute("UPDATE tokens SET last_used_at = %s WHERE name = %s", (when, name))

    async def token_by_hash(self, token_hash: str) -> TokenRecord | None:
        row = await self._db.fetch_one(
            f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE token_hash = %s", (token_hash,)
        )
        return None if row is None else row_to_token(row)

    async def list_tokens(self) -> list[TokenRecord]:
        rows = await self._db.fetch_all(f"SELECT {_TOKEN_COLUMNS} FROM tokens ORDER BY name")
        return [row_to_token(r) for r in rows]

    async def count_tokens(self) -> int:
        count: int = await self._db.fetch_value("SELECT count(*) FROM tokens")
        return count

    # -- audit log ------------------------------------------------------------------------------
    async def record_audit(self, entries: Sequence[AuditRecord]) -> None:
        rows = [
            (e.at, e.token, clean(e.client), e.method, clean(e.route), clean(e.target), e.status)
            for e in entries
        ]

        async def insert(conn: Conn) -> None:
            async with conn.cursor() as cursor:
                await cursor.executemany(
                    "INSERT INTO audit (at, token, client, method, route, target, status) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    rows,
                )

        await self._db.write(insert, size=len(rows), transaction=True)

    async def list_audit(
        self, *, limit: int = 100, cursor: int | None = None, descending: bool = False
    ) -> AuditPage:
        rows, next_cursor = await read_page(
            self._db, f"SELECT {_AUDIT_COLUMNS} FROM audit", {}, limit, cursor, descending
        )
        return AuditPage([row_to_audit(r) for r in rows], next_cursor)

    async def prune_audit(self, before: float, limit: int) -> int:
        # Oldest first by seq (the insertion order, so also by time) through the primary key.
        return await self._db.execute(
            "DELETE FROM audit WHERE seq IN "
            "(SELECT seq FROM audit WHERE at < %s ORDER BY seq LIMIT %s)",
            (before, limit),
        )

    # -- idempotency keys -----------------------------------------------------------------------
    async def find_key(self, principal: str, key: str, now: float) -> IdempotencyRecord | None:
        row = await self._db.fetch_one(
            f"SELECT {_KEY_COLUMNS} FROM idempotency_keys "
            "WHERE principal = %s AND key = %s AND expires_at > %s",
            (principal, key, now),
        )
        return None if row is None else IdempotencyRecord(*row)

    async def prune_keys(self, before: float, limit: int) -> int:
        return await self._db.execute(
            "DELETE FROM idempotency_keys WHERE (principal, key) IN (SELECT principal, key "
            "FROM idempotency_keys WHERE expires_at < %s ORDER BY expires_at LIMIT %s)",
            (before, limit),
        )

    # -- callbacks ------------------------------------------------------------------------------
    async def add_callback(self, callback: CallbackRecord) -> None:
        await self._db.execute(
            "INSERT INTO callbacks (kind, target_id, url, created_at) VALUES (%s, %s, %s, %s)",
            (callback.kind, callback.target_id, callback.url, callback.created_at),
        )

    async def drop_callback(self, kind: str, target_id: str) -> None:
        await self._db.execute(
            "WITH attempts AS (DELETE FROM callback_attempts "
            "WHERE kind = %(kind)s AND target_id = %(id)s) "
            "DELETE FROM callbacks WHERE kind = %(kind)s AND target_id = %(id)s",
            {"kind": kind, "id": target_id},
        )

    async def arm_callback(self, kind: str, target_id: str, at: float) -> bool:
        return (
            await self._db.execute(
                "UPDATE callbacks SET next_at = %s WHERE kind = %s AND target_id = %s "
                "AND state = 'pending' AND next_at IS NULL",
                (at, kind, target_id),
            )
            == 1
        )

    async def waiting_callbacks(self) -> list[tuple[str, str]]:
        rows = await self._db.fetch_all(
            "SELECT kind, target_id FROM callbacks WHERE state = 'pending' AND next_at IS NULL"
        )
        return [(r[0], r[1]) for r in rows]

    async def due_callbacks(self, now: float, limit: int) -> list[CallbackRecord]:
        rows = await self._db.fetch_all(
            f"SELECT {_CALLBACK_COLUMNS} FROM callbacks "
            "WHERE state = 'pending' AND next_at <= %s ORDER BY next_at LIMIT %s",
            (now, limit),
        )
        return [CallbackRecord(*r) for r in rows]

    async def claim_callbacks(self, now: float, limit: int, until: float) -> list[CallbackRecord]:
        # SKIP LOCKED: a callback another node is taking is left to it; one it took and
        # committed no longer matches (its next_at moved on) when the lock is granted.
        async def take(conn: Conn) -> list[CallbackRecord]:
            cursor = await conn.execute(
                "UPDATE callbacks c SET next_at = %s FROM ("
                "SELECT kind, target_id, next_at FROM callbacks "
                "WHERE state = 'pending' AND next_at <= %s ORDER BY next_at LIMIT %s "
                "FOR UPDATE SKIP LOCKED) due "
                "WHERE c.kind = due.kind AND c.target_id = due.target_id "
                "RETURNING c.kind, c.target_id, c.url, c.created_at, c.state, due.next_at",
                (until, now, limit),
            )
            rows = await cursor.fetchall()
            return sorted((CallbackRecord(*r) for r in rows), key=lambda c: c.next_at or 0.0)

        return await self._db.write(take)

    async def record_callback_attempt(
        self,
        kind: str,
        target_id: str,
        attempt: CallbackAttempt,
        state: str,
        next_at: float | None,
    ) -> None:
        params = {
            "kind": kind,
            "id": target_id,
            "at": attempt.at,
            "code": attempt.status_code,
            "error": clean(attempt.error),
            "state": state,
            "next_at": next_at,
        }

        async def record(conn: Conn) -> None:
            # The callback's row is locked by a statement of its own, so that the next one's
            # snapshot sees every attempt an earlier delivery (another node's) recorded.
            await conn.execute(
                "UPDATE callbacks SET state = %(state)s, next_at = %(next_at)s "
                "WHERE kind = %(kind)s AND target_id = %(id)s",
                params,
            )
            await conn.execute(
                "INSERT INTO callback_attempts (kind, target_id, n, at, status_code, error) "
                "SELECT %(kind)s, %(id)s, coalesce(max(n), 0) + 1, %(at)s, %(code)s, %(error)s "
                "FROM callback_attempts WHERE kind = %(kind)s AND target_id = %(id)s",
                params,
            )

        await self._db.write(record, transaction=True)

    async def get_callback(self, kind: str, target_id: str) -> CallbackRecord | None:
        async def read(conn: Conn) -> CallbackRecord | None:
            key = (kind, target_id)
            row = await (
                await conn.execute(
                    f"SELECT {_CALLBACK_COLUMNS} FROM callbacks WHERE kind = %s AND target_id = %s",
                    key,
                )
            ).fetchone()
            if row is None:
                return None
            found = CallbackRecord(*row)
            attempts = await (
                await conn.execute(
                    "SELECT at, status_code, error FROM callback_attempts "
                    "WHERE kind = %s AND target_id = %s ORDER BY n",
                    key,
                )
            ).fetchall()
            found.attempts = [CallbackAttempt(*r) for r in attempts]
            return found

        return await self._db.with_connection(read)

    # -- schedules ------------------------------------------------------------------------------
    async def create_schedule(self, schedule: ScheduleRecord) -> bool:
        return (
            await self._db.execute(
                _SCHEDULE_INSERT + " ON CONFLICT DO NOTHING", _schedule_params(schedule)
            )
            == 1
        )

    async def save_schedule(self, schedule: ScheduleRecord) -> None:
        # The timetable's next due time moves only when the timing itself changed.
        await self._db.execute(
            _SCHEDULE_INSERT + " ON CONFLICT (name) DO UPDATE SET "
            "next_run = CASE WHEN schedules.cron IS NOT DISTINCT FROM excluded.cron "
            'AND schedules."interval" IS NOT DISTINCT FROM excluded."interval" '
            "AND schedules.timezone = excluded.timezone "
            "THEN schedules.next_run ELSE excluded.next_run END, "
            "worker = excluded.worker, chain = excluded.chain, config = excluded.config, "
            'cron = excluded.cron, "interval" = excluded."interval", '
            "timezone = excluded.timezone, catch_up = excluded.catch_up, "
            "source = excluded.source",
            _schedule_params(schedule),
        )

    async def get_schedule(self, name: str) -> ScheduleRecord | None:
        row = await self._db.fetch_one(
            f"SELECT {_SCHEDULE_COLUMNS} FROM schedules WHERE name = %s", (name,)
        )
        return None if row is None else row_to_schedule(row)

    async def list_schedules(self) -> list[ScheduleRecord]:
        rows = await self._db.fetch_all(f"SELECT {_SCHEDULE_COLUMNS} FROM schedules ORDER BY name")
        return [row_to_schedule(r) for r in rows]

    async def delete_schedule(self, name: str) -> bool:
        return await self._db.execute("DELETE FROM schedules WHERE name = %s", (name,)) > 0

    async def set_schedule_paused(self, name: str, paused: bool, next_run: float) -> bool:
        return (
            await self._db.execute(
                "UPDATE schedules SET paused = %(paused)s, next_run = CASE WHEN %(paused)s "
                "THEN next_run ELSE %(next_run)s END WHERE name = %(name)s",
                {"paused": paused, "next_run": next_run, "name": name},
            )
            > 0
        )

    async def claim_schedule_run(
        self, name: str, due: float, next_run: float, run_id: str | None, at: float
    ) -> bool:
        # A compare-and-set on next_run: of concurrent claims (any node), the first to lock the
        # row moves it; the others re-check it once it commits and find it moved.
        if run_id is None:
            query = (
                "UPDATE schedules SET next_run = %s WHERE name = %s AND next_run = %s "
                "AND NOT paused"
            )
            params: tuple[Any, ...] = (next_run, name, due)
        else:
            query = (
                "UPDATE schedules SET next_run = %s, last_run_at = %s, last_run_id = %s, "
                "last_error = NULL WHERE name = %s AND next_run = %s AND NOT paused"
            )
            params = (next_run, at, run_id, name, due)
        return await self._db.execute(query, params) == 1

    async def record_schedule_run(
        self, name: str, run_id: str | None, at: float, error: str | None
    ) -> None:
        if run_id is None:
            await self._db.execute(
                "UPDATE schedules SET last_error = %s WHERE name = %s", (clean(error), name)
            )
        else:
            await self._db.execute(
                "UPDATE schedules SET last_run_at = %s, last_run_id = %s, last_error = %s "
                "WHERE name = %s",
                (at, run_id, clean(error), name),
            )


def _schedule_params(s: ScheduleRecord) -> tuple[Any, ...]:
    return (
        s.name,
        s.worker,
        s.chain,
        json_text(s.config),
        s.cron,
        s.interval,
        s.timezone,
        s.catch_up,
        s.next_run,
        s.created_at,
        s.paused,
        s.source,
        s.last_run_at,
        s.last_run_id,
        clean(s.last_error),
    )
