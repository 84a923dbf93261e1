"""What the nodes sharing a PostgreSQL database tell each other through it.

Each store object tags its connections with an origin (a random name, set on every connection
the pool opens), so the change log (``task_changes``, written by a trigger, see
tasky.store.pg_schema) says which changes it made itself. After its writes that log changes
commit, the store NOTIFYs the schema's channel ("e"), the writes of a moment in one notification
and without waiting for its flush (:class:`Notifier`: a hint needs no durability, and a notifying
commit holds a lock that serializes the others). A dedicated connection LISTENs on the channel
and turns notifications into :class:`~tasky.store.records.Wakeup` hints; when it is lost (a
PostgreSQL restart, a terminated backend, a network cut) it reconnects with backoff and then
sends a Wakeup "all", since notifications sent meanwhile are gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Container, Sequence

import psycopg
from psycopg import sql

from tasky.states import STATUS_OF
from tasky.store.pg_database import Conn, PgDatabase
from tasky.store.records import ActionRequest, TaskChange, Wakeup

log = logging.getLogger("tasky.store")

# The schema's channel (schemas of one database share its notifications; tests run many).
CHANNEL_SQL = "'tasky:' || current_schema()"
_KINDS = {"c": "control", "e": "changes"}
# Reconnecting the LISTEN connection: the first retry at once, then waits that double up to this.
_MAX_BACKOFF = 5.0
# Without a notification for this long, the LISTEN connection is checked with a query (a
# connection cut without a word would otherwise wait forever; polling covers the gap meanwhile).
_IDLE_CHECK = 10.0


def wakeup(payload: str) -> Wakeup | None:
    kind = _KINDS.get(payload[:1])
    return None if kind is None else Wakeup(kind, payload[1:])


async def tag_connection(conn: Conn, origin: str) -> None:
    """Name the store object that writes through ``conn`` (read by the change-log trigger)."""
    await conn.execute("SELECT set_config('tasky.origin', %s, false)", (origin,))


_REQUEST = """
INSERT INTO task_requests (task_id, owner, attempt, action, at)
SELECT id, owner, attempt, %(action)s, %(at)s FROM tasks
WHERE id = %(id)s AND owner = %(owner)s AND attempt = %(attempt)s
ON CONFLICT (task_id) DO UPDATE SET owner = excluded.owner, attempt = excluded.attempt,
    action = excluded.action, at = excluded.at
"""


async def request_action(
    db: PgDatabase, task_id: str, owner: str, attempt: int, action: str, at: float
) -> bool:
    params = {"id": task_id, "owner": owner, "attempt": attempt, "action": action, "at": at}

    async def op(conn: Conn) -> bool:
        cursor = await conn.execute(_REQUEST, params)
        if cursor.rowcount != 1:
            return False
        # Delivered when the transaction commits, so the owner finds the request when woken.
        await conn.execute(f"SELECT pg_notify({CHANNEL_SQL}, %s)", ("c" + owner,))
        return True

    return await db.write(op, transaction=True)


async def take_requests(db: PgDatabase, owner: str) -> list[ActionRequest]:
    async def op(conn: Conn) -> list[ActionRequest]:
        cursor = await conn.execute(
            "DELETE FROM task_requests WHERE owner = %s RETURNING task_id, attempt, action, at",
            (owner,),
        )
        return [ActionRequest(*row) for row in await cursor.fetchall()]

    return sorted(await db.write(op), key=lambda r: r.at)


async def last_change(db: PgDatabase) -> int:
    seq = await db.fetch_value("SELECT max(seq) FROM task_changes")
    return int(seq) if seq is not None else 0


async def changes_since(
    db: PgDatabase, origin: str, after: int, limit: int, missing: Sequence[int]
) -> list[TaskChange]:
    rows = await db.fetch_all(
        "SELECT seq, task_id, worker, status, chain_id, owner, created, at, wakes, "
        "origin IS NOT DISTINCT FROM %s, node FROM task_changes "
        "WHERE seq > %s OR seq = ANY(%s) ORDER BY seq LIMIT %s",
        (origin, after, list(missing), limit),
    )
    return [
        TaskChange(r[0], r[1], r[2], STATUS_OF[r[3]], r[4], r[5], r[6], r[7], r[8], r[9], r[10])
        for r in rows
    ]


async def prune_changes(db: PgDatabase, before: float) -> int:
    async def op(conn: Conn) -> int:
        changes = await conn.execute("DELETE FROM task_changes WHERE at < %s", (before,))
        requests = await conn.execute("DELETE FROM task_requests WHERE at < %s", (before,))
        return max(changes.rowcount, 0) + max(requests.rowcount, 0)

    return await db.write(op)


class Notifier:
    """Tells the other nodes that this store logged changes: one NOTIFY for all the writes that
    committed since the last one, in a transaction of its own that does not wait for its flush
    (``synchronous_commit`` off: losing a hint in a crash costs a poll interval, nothing more)."""

    def __init__(self, db: PgDatabase) -> None:
        self._db = db
        self._sending: asyncio.Task[None] | None = None
        self._again = False
        # The backends this store notified from, newest last: its own notifications come back
        # to its LISTEN connection, and it has nothing to learn from them.
        self.backends: dict[int, None] = {}

    def changed(self) -> None:
        """A write that logged changes committed (call it in the event loop)."""
        if self._sending is None:
            self._sending = asyncio.ensure_future(self._send())
        else:
            self._again = True  # one more after the one in flight: it may have missed this

    async def _send(self) -> None:
        try:
            while True:
                self._again = False
                try:
                    await self._db.with_connection(self._notify)
                except Exception as exc:  # the poll finds the changes anyway
                    log.warning("notifying the other nodes failed: %s", exc)
                if not self._again:
                    return
        finally:
            self._sending = None

    async def _notify(self, conn: Conn) -> None:
        pid = conn.info.backend_pid
        self.backends.pop(pid, None)
        self.backends[pid] = None
        if len(self.backends) > _KEEP_BACKENDS:
            del self.backends[next(iter(self.backends))]
        await conn.execute(_NOTIFY_CHANGES)

    async def drain(self) -> None:
        if self._sending is not None:
            await asyncio.wait({self._sending})


# More than a pool holds: a backend that left the pool long ago may serve another node by now.
_KEEP_BACKENDS = 32
# One round trip: without parameters, the statements go as one simple query.
_NOTIFY_CHANGES = (
    f"BEGIN; SET LOCAL synchronous_commit TO off; SELECT pg_notify({CHANNEL_SQL}, 'e'); COMMIT"
)


class Listener:
    """The LISTEN connection of one store: calls ``wake`` with each hint, reconnecting as long as
    the store is open."""

    def __init__(self, url: str, wake: Callable[[Wakeup], None], own: Container[int] = ()) -> None:
        self._url = url
        self.wake = wake
        # Backends whose notifications are this store's own (see Notifier.backends).
        self._own = own
        self._task: asyncio.Task[None] | None = None
        # The backend of the LISTEN connection now (tests terminate it), None while down.
        self.backend_pid: int | None = None
        self.connected = asyncio.Event()
        self._backoff = 0.0

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        self._backoff = 0.0
        first = True
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._url, autocommit=True
                ) as conn:
                    await self._listen(conn, first)
            except (psycopg.Error, OSError) as exc:
                self.backend_pid = None
                self.connected.clear()
                log.warning(
                    "the PostgreSQL LISTEN connection failed (%s); reconnecting in %.1fs "
                    "(polling finds new work meanwhile)",
                    " ".join(str(exc).split()) or type(exc).__name__,
                    self._backoff,
                )
            first = False
            await asyncio.sleep(self._backoff)
            self._backoff = min(max(self._backoff * 2, 0.1), _MAX_BACKOFF)

    async def _listen(self, conn: Conn, first: bool) -> None:
        row = await (await conn.execute(f"SELECT {CHANNEL_SQL}, pg_backend_pid()")).fetchone()
        assert row is not None
        channel, self.backend_pid = str(row[0]), int(row[1])
        await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        self.connected.set()
        self._backoff = 0.0
        if not first:
            # Whatever was notified while the connection was down is lost: look at everything.
            self._call(Wakeup("all"))
        while True:
            async for notify in conn.notifies(timeout=_IDLE_CHECK):
                if notify.pid in self._own:
                    continue
                hint = wakeup(notify.payload)
                if hint is not None:
                    self._call(hint)
            await conn.execute("SELECT 1")  # raises if the connection is gone

    def _call(self, hint: Wakeup) -> None:
        try:
            self.wake(hint)
        except Exception:
            log.exception("a wake-up handler failed")
