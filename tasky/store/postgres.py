"""PostgreSQL store: the store for Tasky nodes that share one database.

Each operation is one transaction on a pooled connection, most of them one statement (see
tasky.store.pg_database); PostgreSQL itself groups the commits of concurrent transactions into
one WAL flush. Claims take slot rows with ``FOR UPDATE SKIP LOCKED`` so a worker's limit holds
across every node (tasky.store.pg_tasks); ending an attempt is a compare-and-set on (task, owner,
attempt) that frees the slot in the same statement (tasky.store.pg_moves). The schema is
versioned and migrated under an advisory lock when the store opens (tasky.store.pg_schema).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import psycopg

from tasky.states import Status
from tasky.store import pg_changes, pg_moves, pg_stats, pg_tasks
from tasky.store.base import finish_each
from tasky.store.pg_chains import PgChainStore
from tasky.store.pg_database import (
    Conn,
    PgDatabase,
    clean,
    json_text,
    json_value,
    read_page,
)
from tasky.store.pg_nodes import NodesMixin
from tasky.store.pg_records import RecordsMixin, claim_key
from tasky.store.pg_schema import FINISHED_SQL, migrate
from tasky.store.pg_submits import SubmitGroups
from tasky.store.pg_tasks import COLUMNS, row_to_task
from tasky.store.records import (
    ActionRequest,
    AttemptEnd,
    AttemptRecord,
    ChildRecord,
    Claim,
    CommitStats,
    IdempotencyRecord,
    LogLine,
    Outcome,
    TaskChange,
    TaskPage,
    TaskRecord,
    Wakeup,
    WorkerStats,
    batch_target,
)
from tasky.store.sql_page import created_between, task_filters


class DatabaseUnreachable(ValueError):
    """The PostgreSQL server did not accept a connection."""

    def __init__(self, cause: Exception) -> None:
        # libpq's message names the host and port, never the password.
        reason = " ".join(str(cause).split())
        super().__init__(f"cannot reach PostgreSQL ({reason})")


T = TypeVar("T")

_HELD = "(status = 'Running' OR (status = 'Paused' AND owner IS NOT NULL))"


class PostgresStore(NodesMixin, RecordsMixin):
    """The store of a node sharing ``url`` (``postgresql://USER@HOST:PORT/DB``) with others."""

    shared = True
    ordered_writes = False

    def __init__(self, url: str, *, min_connections: int = 2, max_connections: int = 10) -> None:
        self.url = url
        # Names this store object in the change log (tasky.store.pg_changes).
        self.origin = secrets.token_hex(8)
        self._db = PgDatabase(
            url,
            min_size=min_connections,
            max_size=max_connections,
            configure=lambda conn: pg_changes.tag_connection(conn, self.origin),
        )
        self.listener: pg_changes.Listener | None = None
        self._notifier = pg_changes.Notifier(self._db)
        self.chains = PgChainStore(self._db)
        self._submits = SubmitGroups(self._db)
        # Per worker, the limit up to which this store made sure slot rows exist.
        self._slots_ready: dict[str, int] = {}
        # Log writes in flight, by task. An operation that ends a task's attempt waits for its
        # task's, so whoever sees the attempt ended sees all its lines: the SQLite store's one
        # writer commits writes in the order they came, concurrent transactions here in any.
        self._log_writes: dict[str, asyncio.Future[None]] = {}

    # -- lifecycle ------------------------------------------------------------------------------
    async def open(self) -> None:
        await self._db.open()
        try:
            await self._db.with_connection(migrate)
        except BaseException:
            await self._db.close()
            raise

    async def close(self) -> None:
        if self.listener is not None:
            await self.listener.stop()
            self.listener = None
        await self._submits.drain()
        await self._notifier.drain()
        if self._log_writes:
            await asyncio.wait(set(self._log_writes.values()))
        await self._db.close()

    def prepare_now(self) -> int:
        """Before the server starts: bring the schema up to date (a database newer than this
        code stops the start here, with a clear message) and return how many API tokens it
        stores (they count as auth beyond loopback)."""
        return asyncio.run(self._prepare())

    async def _prepare(self) -> int:
        try:
            conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
        except psycopg.OperationalError as exc:
            raise DatabaseUnreachable(exc) from None
        async with conn:
            await migrate(conn)
            row = await (await conn.execute("SELECT count(*) FROM tokens")).fetchone()
        return 0 if row is None else int(row[0])

    # -- task operations (see tasky.store.base.Store) -------------------------------------------
    async def submit(self, task: TaskRecord, claim: Claim | None = None) -> TaskRecord:
        config = json_text(task.config)
        if claim is not None:
            await self._ensure_slots(task.worker, claim.limit)
        return self._changed(await self._submits.submit(task, config, claim))

    async def submit_with_key(
        self, task: TaskRecord, key: IdempotencyRecord, claim: Claim | None = None
    ) -> TaskRecord | IdempotencyRecord:
        config = json_text(task.config)
        keyed = IdempotencyRecord(
            key.principal, key.key, key.fingerprint, task.id, key.created_at, key.expires_at
        )
        if claim is not None:
            await self._ensure_slots(task.worker, claim.limit)

        async def op(conn: Conn) -> TaskRecord | IdempotencyRecord:
            existing = await claim_key(conn, keyed)
            if existing is not None:
                return existing
            return await pg_tasks.insert(conn, task, config, claim)

        stored = await self._db.write(op, transaction=True)
        if isinstance(stored, TaskRecord):
            self._notifier.changed()
        return stored

    async def submit_many(
        self, tasks: Sequence[TaskRecord], claim: Claim | None = None
    ) -> list[TaskRecord]:
        configs = [json_text(task.config) for task in tasks]
        if claim is not None:
            for worker in sorted({task.worker for task in tasks}):
                await self._ensure_slots(worker, claim.limit)

        return self._changed(
            await self._db.write(
                lambda conn: pg_tasks.insert_all(conn, tasks, configs, claim),
                size=len(tasks),
                transaction=True,
            )
        )

    async def submit_many_with_key(
        self, tasks: Sequence[TaskRecord], key: IdempotencyRecord, claim: Claim | None = None
    ) -> list[TaskRecord] | IdempotencyRecord:
        configs = [json_text(task.config) for task in tasks]
        keyed = IdempotencyRecord(
            key.principal,
            key.key,
            key.fingerprint,
            batch_target([t.id for t in tasks]),
            key.created_at,
            key.expires_at,
        )
        if claim is not None:
            for worker in sorted({task.worker for task in tasks}):
                await self._ensure_slots(worker, claim.limit)

        async def op(conn: Conn) -> list[TaskRecord] | IdempotencyRecord:
            existing = await claim_key(conn, keyed)
            if existing is not None:
                return existing
            return await pg_tasks.insert_all(conn, tasks, configs, claim)

        stored = await self._db.write(op, size=len(tasks), transaction=True)
        if isinstance(stored, list) and stored:
            self._notifier.changed()
        return stored

    def insert_many_now(self, tasks: Iterable[TaskRecord]) -> None:
        held: list[tuple[str, str]] = []
        with psycopg.connect(self.url) as conn:
            with (
                conn.cursor() as cursor,
                cursor.copy(f"COPY tasks ({pg_tasks.INSERTED}) FROM STDIN") as copy,
            ):
                for task in tasks:
                    copy.write_row(pg_tasks.insert_params(task, json_text(task.config)))
                    if task.owner is not None and task.status in (Status.RUNNING, Status.PAUSED):
                        held.append((task.worker, task.id))
            # A task imported as holding a slot takes a row after the worker's last one: above
            # the limit it counts against it, as a task left running by a lowered limit does.
            for worker, task_id in held:
                conn.execute(
                    "INSERT INTO worker_slots (worker, slot_no, task_id) "
                    "SELECT %s, coalesce(max(slot_no), 0) + 1, %s FROM worker_slots "
                    "WHERE worker = %s",
                    (worker, task_id, worker),
                )

    async def claim(self, worker: str, claim: Claim, at: float) -> list[TaskRecord]:
        await self._ensure_slots(worker, claim.limit)
        claimed = await self._db.write(lambda conn: pg_tasks.claim(conn, worker, claim, at))
        return self._changed(claimed) if claimed else claimed

    def _changed(self, moved: T) -> T:
        """After a write that may have logged changes: tell the other nodes (if it did)."""
        if moved:
            self._notifier.changed()
        return moved

    async def _ensure_slots(self, worker: str, limit: int) -> None:
        if self._slots_ready.get(worker, 0) < limit:
            await self._db.write(lambda conn: pg_tasks.ensure_slots(conn, worker, limit))
            self._slots_ready[worker] = limit

    async def next_runnable_at(
        self, worker: str, targets: Sequence[str] | None = None
    ) -> float | None:
        # The first entry of the worker's range of tasks_ready: ready_at is the end of a retry's
        # backoff, or when the task joined the queue.
        if targets is None:
            at: float | None = await self._db.fetch_value(
                "SELECT ready_at FROM tasks WHERE worker = %s AND status = 'Queued' "
                "ORDER BY ready_at LIMIT 1",
                (worker,),
            )
            return at
        at = await self._db.fetch_value(
            "SELECT ready_at FROM tasks WHERE worker = %s AND status = 'Queued' "
            "AND (target IS NULL OR target = ANY(%s)) ORDER BY ready_at LIMIT 1",
            (worker, list(targets)),
        )
        return at

    async def finish(
        self, task_id: str, owner: str, attempt: int, outcome: Outcome, lazy: bool = False
    ) -> bool:
        await self._logs_written(task_id)
        return self._changed(
            await self._db.write(
                lambda conn: pg_moves.finish(conn, task_id, owner, attempt, outcome)
            )
        )

    async def finish_many(self, ends: Sequence[AttemptEnd], lazy: bool = False) -> list[bool]:
        return await finish_each(self, ends, lazy)

    async def retry_later(
        self,
        task_id: str,
        owner: str,
        attempt: int,
        error: str,
        run_after: float,
        at: float,
        traceback: str | None = None,
    ) -> bool:
        await self._logs_written(task_id)
        return self._changed(
            await self._db.write(
                lambda conn: pg_moves.requeue(
                    conn, "retry_later", task_id, owner, attempt, error, at, run_after, traceback
                )
            )
        )

    async def requeue_interrupted(
        self, task_id: str, owner: str | None, attempt: int, reason: str, at: float
    ) -> bool:
        await self._logs_written(task_id)
        return self._changed(
            await self._db.write(
                lambda conn: pg_moves.requeue(
                    conn, "requeue_interrupted", task_id, owner, attempt, reason, at
                )
            )
        )

    async def fail_interrupted(
        self, task_id: str, owner: str | None, attempt: int, reason: str, at: float
    ) -> bool:
        await self._logs_written(task_id)
        return self._changed(
            await self._db.write(
                lambda conn: pg_moves.fail_interrupted(conn, task_id, owner, attempt, reason, at)
            )
        )

    async def cancel(self, task_id: str, at: float) -> bool:
        return self._changed(await self._db.write(lambda conn: pg_moves.cancel(conn, task_id, at)))

    async def pause(self, task_id: str, owner: str | None, at: float) -> bool:
        return self._changed(await self._db.execute(*pg_moves.pause(task_id, owner, at)) == 1)

    async def resume(self, task_id: str, owner: str | None, at: float) -> bool:
        return self._changed(await self._db.execute(*pg_moves.resume(task_id, owner, at)) == 1)

    async def rerun(self, task_id: str, at: float) -> bool:
        return self._changed(await self._db.execute(*pg_moves.rerun(task_id, at)) == 1)

    async def update_config(self, task_id: str, config: Any) -> bool:
        return await self._db.execute(*pg_moves.update_config(task_id, config)) == 1

    async def heartbeat(self, owner: str, task_ids: Sequence[str], lease_until: float) -> int:
        if not task_ids:
            return 0
        return await self._db.execute(*pg_moves.heartbeat(owner, task_ids, lease_until))

    async def release(self, owner: str) -> int:
        return self._changed(await self._db.execute(*pg_moves.release(owner)))

    async def held_tasks(self, expired_before: float | None = None) -> list[TaskRecord]:
        # A Running task without an owner can only come from a hand-made row: taken too.
        query = f"SELECT {COLUMNS} FROM tasks WHERE {_HELD}"
        params: tuple[Any, ...] = ()
        if expired_before is not None:
            query += " AND (lease_until IS NULL OR lease_until < %s)"
            params = (expired_before,)
        rows = await self._db.fetch_all(query + " ORDER BY seq", params)
        return [row_to_task(r) for r in rows]

    async def set_progress(self, updates: Sequence[tuple[str, float | None, str | None]]) -> None:
        if not updates:
            return
        # Running tasks only: a write that commits after the attempt ended (concurrent
        # transactions commit in any order) must not replace the progress the end recorded.
        await self._db.execute(
            "UPDATE tasks SET progress = u.fraction, progress_message = u.message "
            "FROM unnest(%s::text[], %s::float8[], %s::text[]) AS u(id, fraction, message) "
            f"WHERE tasks.id = u.id AND {pg_tasks.HOLDS_SLOT}",
            (
                [task_id for task_id, _, _ in updates],
                [fraction for _, fraction, _ in updates],
                [clean(message) for _, _, message in updates],
            ),
        )

    async def append_logs(self, lines: Sequence[tuple[str, float, str]], max_lines: int) -> None:
        if not lines:
            return
        # Each line's place among the lines of its task in this call; the statement adds the
        # task's last stored seq.
        seen: dict[str, int] = {}
        places = []
        for task_id, _, _ in lines:
            seen[task_id] = seen.get(task_id, 0) + 1
            places.append(seen[task_id])
        task_ids = list(seen)
        appended = (
            [task_id for task_id, _, _ in lines],
            places,
            [ts for _, ts, _ in lines],
            [clean(line) for _, _, line in lines],
            task_ids,
        )

        async def op(conn: Conn) -> None:
            await conn.execute(_APPEND_LOGS, appended)
            await conn.execute(_TRIM_LOGS, {"ids": task_ids, "keep": max_lines})

        write = asyncio.ensure_future(self._db.write(op, transaction=True))
        for task_id in task_ids:
            self._log_writes[task_id] = write

        def done(_: object) -> None:
            for task_id in task_ids:
                if self._log_writes.get(task_id) is write:
                    del self._log_writes[task_id]

        write.add_done_callback(done)
        # Shielded: a caller that goes away does not take the write with it.
        await asyncio.shield(write)

    async def _logs_written(self, task_id: str) -> None:
        """Wait for the task's log writes in flight (failed or not)."""
        pending = self._log_writes.get(task_id)
        if pending is not None:
            await asyncio.wait({pending})

    async def record_child(self, child: ChildRecord) -> None:
        await self._db.execute(
            "INSERT INTO task_children (task_id, pgid, start_ticks, boot_id, mark, node) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (task_id) DO UPDATE SET "
            "pgid = excluded.pgid, start_ticks = excluded.start_ticks, "
            "boot_id = excluded.boot_id, mark = excluded.mark, node = excluded.node",
            (child.task_id, child.pgid, child.start_ticks, child.boot_id, child.mark, child.node),
        )

    async def forget_children(self, task_ids: Sequence[str]) -> None:
        if task_ids:
            await self._db.execute(
                "DELETE FROM task_children WHERE task_id = ANY(%s)", (list(task_ids),)
            )

    # -- many nodes on one store (see tasky.store.pg_changes) ------------------------------------
    def watch(self, wake: Callable[[Wakeup], None]) -> None:
        if self.listener is not None:
            # An engine started again on this store object: hints go to the new one.
            self.listener.wake = wake
            return
        self.listener = pg_changes.Listener(self.url, wake, self._notifier.backends)
        self.listener.start()

    async def request_action(
        self, task_id: str, owner: str, attempt: int, action: str, at: float
    ) -> bool:
        return await pg_changes.request_action(self._db, task_id, owner, attempt, action, at)

    async def take_requests(self, owner: str) -> list[ActionRequest]:
        return await pg_changes.take_requests(self._db, owner)

    async def last_change(self) -> int:
        return await pg_changes.last_change(self._db)

    async def changes_since(
        self, after: int, limit: int, missing: Sequence[int] = ()
    ) -> list[TaskChange]:
        return await pg_changes.changes_since(self._db, self.origin, after, limit, missing)

    async def prune_changes(self, before: float) -> int:
        return await pg_changes.prune_changes(self._db, before)

    # -- reads ----------------------------------------------------------------------------------
    async def get(self, task_id: str) -> TaskRecord | None:
        row = await self._db.fetch_one(f"SELECT {COLUMNS} FROM tasks WHERE id = %s", (task_id,))
        return None if row is None else row_to_task(row)

    async def children(self) -> list[ChildRecord]:
        rows = await self._db.fetch_all(
            "SELECT task_id, pgid, start_ticks, boot_id, mark, node FROM task_children"
        )
        return [ChildRecord(*row) for row in rows]

    async def list_tasks(
        self,
        *,
        status: Status | None = None,
        worker: str | None = None,
        chain_id: str | None = None,
        limit: int = 100,
        cursor: int | None = None,
        descending: bool = False,
        id_prefix: str | None = None,
        created_after: float | None = None,
        created_before: float | None = None,
        error_contains: str | None = None,
    ) -> TaskPage:
        conditions: list[tuple[str, Any]] = []
        if id_prefix:
            conditions.append(("starts_with(id, %s)", id_prefix))
        conditions += created_between(created_after, created_before, "%s")
        if error_contains:
            # translate(), not lower(): ASCII letters only, whatever the database's locale, so
            # every store finds the same errors (SQLite's lower() folds ASCII only).
            conditions.append(
                (
                    f"strpos({_ASCII_FOLD.format('error')}, {_ASCII_FOLD.format('%s')}) > 0",
                    error_contains,
                )
            )
        rows, next_cursor = await read_page(
            self._db,
            f"SELECT {COLUMNS} FROM tasks",
            task_filters(status, worker, chain_id),
            limit,
            cursor,
            descending,
            conditions,
        )
        return TaskPage([row_to_task(r) for r in rows], next_cursor)

    async def logs(self, task_id: str, after: int = 0, limit: int = 1000) -> list[LogLine]:
        rows = await self._db.fetch_all(
            "SELECT seq, ts, line FROM task_logs WHERE task_id = %s AND seq > %s "
            "ORDER BY seq LIMIT %s",
            (task_id, after, limit),
        )
        return [LogLine(*r) for r in rows]

    async def attempts(self, task_id: str) -> list[AttemptRecord]:
        rows = await self._db.fetch_all(
            "SELECT attempt, status, started_at, finished_at, error, result, traceback, node, "
            "paused_seconds FROM task_attempts WHERE task_id = %s ORDER BY attempt",
            (task_id,),
        )
        return [
            AttemptRecord(r[0], Status(r[1]), r[2], r[3], r[4], json_value(r[5]), r[6], r[7], r[8])
            for r in rows
        ]

    async def worker_stats(self, worker: str) -> WorkerStats:
        return await pg_stats.worker_stats(self._db, worker)

    async def finished_per_minute(
        self, worker: str, since_minute: int
    ) -> list[tuple[int, str, int]]:
        return await pg_stats.finished_per_minute(self._db, worker, since_minute)

    async def queue_positions(self, worker: str, task_ids: Sequence[str]) -> dict[str, int]:
        return await self._db.with_connection(
            lambda conn: pg_tasks.queue_positions(conn, worker, task_ids)
        )

    async def oldest_queued_at(self, worker: str) -> float | None:
        # The first Queued row by seq through the (worker, status, seq) index.
        at: float | None = await self._db.fetch_value(
            "SELECT queued_at FROM tasks WHERE worker = %s AND status = 'Queued' "
            "ORDER BY seq LIMIT 1",
            (worker,),
        )
        return at

    def commit_stats(self) -> CommitStats:
        return self._db.commit_stats()

    # -- retention ------------------------------------------------------------------------------
    async def prune_finished(self, before: float, worker: str | None, limit: int) -> int:
        where, params = _prunable(before, worker)
        return await self._db.execute(
            f"WITH doomed AS (SELECT id FROM tasks WHERE {where} ORDER BY finished_at "
            "LIMIT %s FOR UPDATE SKIP LOCKED), "
            "logs AS (DELETE FROM task_logs WHERE task_id IN (SELECT id FROM doomed)), "
            "attempts AS (DELETE FROM task_attempts WHERE task_id IN (SELECT id FROM doomed)), "
            "children AS (DELETE FROM task_children WHERE task_id IN (SELECT id FROM doomed)) "
            "DELETE FROM tasks WHERE id IN (SELECT id FROM doomed)",
            (*params, limit),
        )

    async def count_prunable(self, before: float, worker: str | None) -> int:
        where, params = _prunable(before, worker)
        count: int = await self._db.fetch_value(f"SELECT count(*) FROM tasks WHERE {where}", params)
        return count


# Finished tasks outside chains (a chain's tasks go with the chain) that ended before a time:
# a range of tasks_finished (one worker) or of tasks_prunable (all of them).
def _prunable(before: float, worker: str | None) -> tuple[str, tuple[Any, ...]]:
    where = f"{FINISHED_SQL} AND finished_at < %s AND chain_id IS NULL"
    if worker is None:
        return where, (before,)
    return where + " AND worker = %s", (before, worker)


# The lines of one call: (task id, place among the call's lines of that task, time, line).
_APPEND_LOGS = """
INSERT INTO task_logs (task_id, seq, ts, line)
SELECT new.task_id, coalesce(last.seq, 0) + new.place, new.ts, new.line
FROM unnest(%s::text[], %s::int[], %s::float8[], %s::text[]) AS new(task_id, place, ts, line)
LEFT JOIN (
    SELECT task_id, max(seq) AS seq FROM task_logs WHERE task_id = ANY(%s) GROUP BY task_id
) last USING (task_id)
"""
# Keep the newest ``keep`` lines of each task; count what went.
_TRIM_LOGS = """
WITH last AS (
    SELECT task_id, max(seq) AS seq FROM task_logs WHERE task_id = ANY(%(ids)s) GROUP BY task_id
), dropped AS (
    DELETE FROM task_logs l USING last
    WHERE l.task_id = last.task_id AND l.seq <= last.seq - %(keep)s
    RETURNING l.task_id
)
UPDATE tasks SET logs_dropped = logs_dropped + d.n
FROM (SELECT task_id, count(*) AS n FROM dropped GROUP BY task_id) d
WHERE tasks.id = d.task_id
"""


_ASCII_FOLD = "translate({}, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')"
