"""SQLite store: the embedded default.

One writer thread owns the only write connection. Writes from the event loop are queued as small
operations; the writer takes everything queued, runs it in one transaction and commits once
(group commit), then wakes every caller. With ``synchronous=FULL`` a commit is on disk before any
caller hears about it, so each 2xx is durable while thousands of submits share one fsync. A lone
submit while the writer is idle is committed on the event loop itself, with the same connection
(see ``_hand_over``): the writer is not using it then.

Reads use a second connection on the event loop thread itself: the queries are index lookups that
take microseconds, cheaper than a hop to a thread pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from tasky.buckets import Buckets
from tasky.states import Status
from tasky.store import sqlite_moves as moves
from tasky.store.base import StoreLocked, node_is_alive
from tasky.store.migrate import migrate
from tasky.store.one_node import OneNodeMixin
from tasky.store.private import private_database, private_dir
from tasky.store.records import (
    AttemptEnd,
    AttemptRecord,
    AuditPage,
    AuditRecord,
    CallbackAttempt,
    CallbackRecord,
    ChildRecord,
    Claim,
    CommitStats,
    IdempotencyRecord,
    LogLine,
    NodeRecord,
    Outcome,
    ScheduleRecord,
    TaskPage,
    TaskRecord,
    TokenRecord,
    WorkerStats,
    batch_target,
)
from tasky.store.sql_page import created_between, task_filters
from tasky.store.sql_rows import (
    NODE_COLUMNS,
    node_values,
    row_to_audit,
    row_to_node,
    row_to_schedule,
    row_to_token,
)
from tasky.store.sqlite_chains import CHAIN_SCHEMA, CHAINS, SqliteChainStore
from tasky.store.sqlite_common import KEY_COLUMNS, claim_key, delete_tasks, read_page
from tasky.store.sqlite_tasks import (
    COLUMNS,
    INSERT_SIZES,
    Placement,
    claim_rows,
    claimed_tasks,
    insert_one,
    insert_params,
    insert_placed,
    insert_rows,
    json_text,
    json_value,
    queue_positions,
    row_to_task,
)
from tasky.store.sqlite_totals import WriterConnection
from tasky.store.wal_space import reserve_wal

# Literal (not bound) so SQLite can prove that a query is covered by the partial tasks_ended: the
# very expression of its WHERE (SCHEMA).
_FINISHED_SQL = "(status = 'Completed' OR status = 'Failed' OR status = 'Canceled')"

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS tasks (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    worker TEXT NOT NULL,
    status TEXT NOT NULL,
    config TEXT NOT NULL,
    created_at REAL NOT NULL,
    queued_at REAL,
    started_at REAL,
    finished_at REAL,
    attempt INTEGER NOT NULL DEFAULT 1,
    retries INTEGER NOT NULL DEFAULT 0,
    timeout REAL,
    progress REAL,
    progress_message TEXT,
    result TEXT,
    error TEXT,
    owner TEXT,
    lease_until REAL,
    run_after REAL,
    chain_id TEXT,
    logs_dropped INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS tasks_status ON tasks (status, seq);
CREATE INDEX IF NOT EXISTS tasks_worker ON tasks (worker, status, seq);
-- worker-only listings page in seq order without scanning the worker's other statuses.
CREATE INDEX IF NOT EXISTS tasks_worker_seq ON tasks (worker, seq);
CREATE INDEX IF NOT EXISTS tasks_chain ON tasks (chain_id) WHERE chain_id IS NOT NULL;
-- Retention: finished tasks by worker and age, so pruning reads only what it deletes. Partial, so
-- queued and running tasks (the hot rows) cost it nothing. Its WHERE is _FINISHED_SQL.
-- Equalities joined by OR, not an IN list: SQLite evaluates the WHERE of a partial index for
-- every row written (once per insert, twice per update), and an IN list of three constants made
-- it build and clear an ephemeral table each time (1,497 sqlite3BtreeClearTable calls for 500
-- inserts and 500 updates, none with the ORs; callgrind). tasks_finished, the IN version of
-- earlier versions, is dropped.
DROP INDEX IF EXISTS tasks_finished;
CREATE INDEX IF NOT EXISTS tasks_ended ON tasks (worker, finished_at) WHERE {_FINISHED_SQL};

CREATE TABLE IF NOT EXISTS task_attempts (
    task_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    status TEXT NOT NULL,
    started_at REAL,
    finished_at REAL,
    error TEXT,
    result TEXT,
    PRIMARY KEY (task_id, attempt)
) WITHOUT ROWID;

-- Configs too long to keep in their task's row (sqlite_tasks.CONFIG_ASIDE), by the task's seq;
-- the row's config is then ''.
CREATE TABLE IF NOT EXISTS task_configs (
    seq INTEGER PRIMARY KEY,
    text TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS task_logs (
    task_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    ts REAL NOT NULL,
    line TEXT NOT NULL,
    PRIMARY KEY (task_id, seq)
) WITHOUT ROWID;

-- Counts per (worker, status), so that statistics never scan the tasks table: a trigger moves a
-- task between counts on every status change, so that they can never drift from the rows; new
-- rows are counted by the insert itself, one upsert per (worker, status) of a statement
-- (sqlite_tasks.insert_rows; the per-row insert trigger of earlier versions is dropped).
CREATE TABLE IF NOT EXISTS status_counts (
    worker TEXT NOT NULL,
    status TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (worker, status)
) WITHOUT ROWID;

DROP TRIGGER IF EXISTS count_insert;

CREATE TRIGGER IF NOT EXISTS count_update AFTER UPDATE OF status ON tasks
WHEN old.status <> new.status BEGIN
    UPDATE status_counts SET n = n - 1 WHERE worker = old.worker AND status = old.status;
    INSERT INTO status_counts (worker, status, n) VALUES (new.worker, new.status, 1)
    ON CONFLICT (worker, status) DO UPDATE SET n = n + 1;
END;

CREATE TABLE IF NOT EXISTS worker_timing (
    worker TEXT PRIMARY KEY,
    finished INTEGER NOT NULL DEFAULT 0,
    run_time_sum REAL NOT NULL DEFAULT 0,
    wait_sum REAL NOT NULL DEFAULT 0,
    wait_count INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS run_time_hist (
    worker TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (worker, bucket)
) WITHOUT ROWID;

-- Attempts that ran and ended, per worker, minute (finished_at // 60) and outcome: the
-- throughput chart reads a few rows instead of scanning the tasks table.
CREATE TABLE IF NOT EXISTS finished_per_minute (
    worker TEXT NOT NULL,
    minute INTEGER NOT NULL,
    status TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (worker, minute, status)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS task_children (
    task_id TEXT PRIMARY KEY,
    pgid INTEGER NOT NULL,
    start_ticks INTEGER NOT NULL,
    boot_id TEXT NOT NULL,
    mark TEXT NOT NULL
);

-- Nothing ever used the key-value table of early versions.
DROP TABLE IF EXISTS kv;

-- API tokens: only a SHA-256 of each (random, high-entropy) token is kept.
CREATE TABLE IF NOT EXISTS tokens (
    name TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    workers TEXT,
    created_at REAL NOT NULL,
    expires_at REAL,
    last_used_at REAL
);

CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    token TEXT NOT NULL,
    client TEXT NOT NULL,
    method TEXT NOT NULL,
    route TEXT NOT NULL,
    target TEXT NOT NULL,
    status INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_at ON audit (at);

-- Schedules: next_run is the due time a claim must name (compare-and-set), so that a due time
-- fires once across restarts and across servers sharing the database.
CREATE TABLE IF NOT EXISTS schedules (
    name TEXT PRIMARY KEY,
    worker TEXT,
    chain TEXT,
    config TEXT NOT NULL,
    cron TEXT,
    interval REAL,
    timezone TEXT NOT NULL,
    catch_up TEXT NOT NULL,
    next_run REAL NOT NULL,
    created_at REAL NOT NULL,
    paused INTEGER NOT NULL DEFAULT 0,
    source TEXT NOT NULL,
    last_run_at REAL,
    last_run_id TEXT,
    last_error TEXT
);

-- Idempotency-Key of a submit or chain start, per caller: what it created, until it expires.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    principal TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    target_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (principal, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idempotency_expiry ON idempotency_keys (expires_at);
-- Callbacks (tasky.callbacks): next_at is NULL while the target runs, then the next attempt's
-- time; state: pending, delivered, failed.
CREATE TABLE IF NOT EXISTS callbacks (
    kind TEXT NOT NULL,
    target_id TEXT NOT NULL,
    url TEXT NOT NULL,
    created_at REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    next_at REAL,
    PRIMARY KEY (kind, target_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS callbacks_due ON callbacks (next_at) WHERE state = 'pending';

CREATE TABLE IF NOT EXISTS callback_attempts (
    kind TEXT NOT NULL,
    target_id TEXT NOT NULL,
    n INTEGER NOT NULL,
    at REAL NOT NULL,
    status_code INTEGER,
    error TEXT,
    PRIMARY KEY (kind, target_id, n)
) WITHOUT ROWID;

-- The servers attached to this database (one at a time here). labels, workers: JSON arrays.
CREATE TABLE IF NOT EXISTS nodes (
    name TEXT PRIMARY KEY,
    labels TEXT NOT NULL,
    owner TEXT NOT NULL,
    workers TEXT NOT NULL,
    started_at REAL NOT NULL,
    heartbeat_at REAL NOT NULL,
    stopped_at REAL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL
) WITHOUT ROWID;
"""

_NODE_COLUMNS = NODE_COLUMNS

_TOKEN_COLUMNS = "name, token_hash, role, workers, created_at, expires_at, last_used_at"  # noqa: S105
_AUDIT_COLUMNS = "seq, at, token, client, method, route, target, status"
_SCHEDULE_COLUMNS = (
    "name, worker, chain, config, cron, interval, timezone, catch_up, next_run, created_at, "
    "paused, source, last_run_at, last_run_id, last_error"
)
_SCHEDULE_INSERT = f"INSERT INTO schedules ({_SCHEDULE_COLUMNS}) VALUES ({', '.join('?' * 15)})"
_BATCH_MAX = 4096
# How long a write that no caller waits on (audit rows, token use times) may wait for another
# write's commit to ride along with before it is committed on its own.
TRAILING_DELAY = 0.05
# How long a lazy task end (Store.finish) waits for another write to ride along with.
FINISH_WAIT = 0.001
# A lone submit is committed on the event loop itself while the writer is idle and commits
# are this fast (see SqliteStore._hand_over); above it the loop would stall too long.
INLINE_COMMIT_MAX = 0.001
# How long the writer keeps the empty transaction it began after a group commit (see
# SqliteStore._open_next) for the next group, and the loop the one it began after a lone submit
# (SqliteStore._begin_next_on_loop) for the next lone submit: under load the next write comes
# well within it; idle, the write lock is let go of after it.
IDLE_TRANSACTION = 0.05
# Histogram bounds of the writer's own measurements (tasky.prom exports them).
COMMIT_SECONDS_BOUNDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
COMMIT_SIZE_BOUNDS = (1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 4096.0)

Op = Callable[[sqlite3.Connection], Any]
T = TypeVar("T")
C = TypeVar("C", bound=sqlite3.Connection)


# The sqlite3 module binds int, float, str and bytearray directly, but sends every other value,
# None included, through its adapter registry; a None it finds no adapter for costs it a
# formatted AttributeError (looking up __adapt__ on its protocol type), raised and cleared. A
# submit binds about ten Nones (the insert's empty columns), each ~0.6 us here, and a group
# commit's insert binds them in the writer thread with the GIL held. Registered, None is looked
# up and handed back. Process-wide, like every sqlite3 adapter, and harmless to any other user:
# None binds as NULL either way.
def _bound_as_is(value: None) -> None:
    return value


sqlite3.register_adapter(type(None), _bound_as_is)


def _connect(path: str) -> sqlite3.Connection:
    return _configured(
        sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    )


def connect_writer(path: str) -> WriterConnection:
    """The connection that commits: the store's writer thread's (and the benchmark's measure of
    the disk's floor under a lone submit, bench/floor.py, which commits the same way)."""
    conn = _configured(
        sqlite3.connect(
            path,
            isolation_level=None,
            check_same_thread=False,
            timeout=30,
            factory=WriterConnection,
            # Its own statements, plus insert_rows' one per statement size (INSERT_SIZES).
            cached_statements=128 + len(INSERT_SIZES),
        )
    )
    # The statement journal of a multi-row insert (sqlite_tasks.insert_rows) holds the pages it
    # changed; past 64 KiB (a group commit of ~20 submits) SQLite spilled it to a temporary file,
    # which doubled the writer's system time per row.
    conn.execute("PRAGMA temp_store=MEMORY")
    # Only this connection commits, so only it checkpoints: every WAL_AUTOCHECKPOINT pages.
    conn.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT}")
    return conn


# WAL pages between two checkpoints (SQLite's default: 1,000, 4 MiB). Task ids are random, so a
# group commit of many new tasks dirties pages all over the id index (and the pages of the
# tasks table and its other indexes are dirtied again by every later commit); at 1,000 pages a
# checkpoint followed nearly every commit of 1,000 tasks, copying each page to the database and
# syncing it once per commit. At 10,000 (a WAL of up to ~40 MiB) a page dirtied by several
# commits is copied once. Measured in pairs: batch submit end to end into a store of 100,000 to
# 200,000 tasks 6,200-7,400 -> 9,300-11,000 tasks/s; 32 connections of submits about +18 %;
# a lone submitter's checkpoint stalls come ten times less often but last ~10 ms instead of
# ~3.5 ms, and wrk's lone p99 right after a 32-connection burst went from ~3 to 5-13 ms (the
# burst's WAL is copied back in one go). Choosing the interval by load was tried and dropped:
# writes per commit marked light traffic busy too (its held audit rows go ~100 per commit), and
# the SQL's wall time did on waits for the GIL.
WAL_AUTOCHECKPOINT = 10_000
# The WAL's length written as zeros when the store opens (tasky.store.wal_space): the frames
# between two checkpoints, and room for the group commit that crosses the mark (a batch of
# thousands of tasks writes a few hundred pages).
WAL_RESERVED_FRAMES = WAL_AUTOCHECKPOINT + 1_000


def _configured(conn: C) -> C:
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=OFF")
    conn.execute("PRAGMA cache_size=-65536")
    return conn


class _NewTask:
    """A submitted task on its way to the writer: its config already encoded, and the claim
    that may start it at once."""

    __slots__ = ("_given", "claim", "config", "task")

    def __init__(self, task: TaskRecord, claim: Claim | None) -> None:
        self.task = task
        self.config = json_text(task.config)
        self.claim = claim
        self._given = (task.status, task.owner, task.lease_until, task.started_at)

    def fresh(self) -> TaskRecord:
        """The task as submitted: an insert that was undone (its batch replayed) may have
        marked it started already."""
        task = self.task
        task.status, task.owner, task.lease_until, task.started_at = self._given
        return task


class _Pending:
    """A queued write: the operation (or a new task, which the writer inserts with the rest of
    its batch in one statement), and where to deliver its outcome."""

    __slots__ = ("future", "insert", "op")

    def __init__(self, op: Op | None, insert: _NewTask | None, future: asyncio.Future[Any]) -> None:
        self.op = op
        self.insert = insert
        self.future = future


def _end_empty(conn: sqlite3.Connection) -> None:
    """Roll back the empty transaction begun for a next write that did not come (the caller
    holds the connection), letting go of the database's write lock."""
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def _run_ops(conn: sqlite3.Connection, ops: list[Op]) -> list[Any]:
    """Each operation's value, run in order; a run of consecutive finishes of distinct tasks
    goes to the database together (:func:`moves.finish_many`: a few statements in all instead
    of three per finish), as if one after another. A task that ends twice in one run (a late
    end after a lease moved, say) starts a new run, so each compare-and-set still sees what
    the ones before it wrote. The finishes of a :class:`moves.Finishes` join the runs as if
    they had come one by one; its value is the list of theirs."""
    if not any(isinstance(op, moves.Finishes) for op in ops):
        return _run_flat(conn, ops)
    flat: list[Op] = []
    for op in ops:
        if isinstance(op, moves.Finishes):
            flat += op.finishes
        else:
            flat.append(op)
    answers = iter(_run_flat(conn, flat))
    return [
        [next(answers) for _ in op.finishes] if isinstance(op, moves.Finishes) else next(answers)
        for op in ops
    ]


def _run_flat(conn: sqlite3.Connection, ops: list[Op]) -> list[Any]:
    values: list[Any] = []
    run: list[moves.Finish] = []
    seen: set[str] = set()
    for op in ops:
        if isinstance(op, moves.Finish) and op.task_id not in seen:
            run.append(op)
            seen.add(op.task_id)
            continue
        if run:
            values += _finish_run(conn, run)
            run, seen = [], set()
        if isinstance(op, moves.Finish):
            run.append(op)
            seen.add(op.task_id)
        else:
            values.append(op(conn))
    if run:
        values += _finish_run(conn, run)
    return values


# finish_many writes with UPDATE ... FROM, which SQLite has since 3.33 (2020); an older library
# (the system one some Linux distributions build Python with) ends tasks one at a time.
BATCHED_FINISH = sqlite3.sqlite_version_info >= (3, 33, 0)


def _finish_run(conn: sqlite3.Connection, run: list[moves.Finish]) -> list[bool]:
    if len(run) == 1 or not BATCHED_FINISH:
        return [finish(conn) for finish in run]
    return moves.finish_many(conn, run)


class SqliteStore(OneNodeMixin):
    """The embedded store. ``path`` is the database file; a sibling ``.lock`` file keeps it ours."""

    shared = False
    ordered_writes = True

    def __init__(self, path: str | Path, *, brief: bool = False) -> None:
        """``brief``: opened for a moment (an offline command of the command line), so the WAL is
        not written to its working length at open (tasky.store.wal_space): that pays off over
        thousands of commits, and SQLite deletes the file again at close."""
        self.path = str(path)
        self._brief = brief
        self._lock_file: Any = None
        self._reader: sqlite3.Connection | None = None
        self._writer_conn: WriterConnection | None = None
        self._queue: queue.SimpleQueue[list[_Pending] | None] = queue.SimpleQueue()
        # Writes submitted during the current event-loop iteration; handed over in one piece.
        self._outbox: list[_Pending] = []
        # Writes no answer waits on: they join the next hand-over (see _submit_trailing).
        self._trailing: list[_Pending] = []
        # A Handle, not always a TimerHandle: uvloop's call_at turns a delay that rounds to 0 ms
        # into call_soon, whose Handle has no when(); hence the due time kept apart.
        self._trailing_timer: asyncio.Handle | None = None
        self._trailing_due = 0.0
        # Audit rows and token use times: held like the trailing writes, but they do not ride a
        # lone submit committed on the loop (see _hand_over); they go with the next hand-over to
        # the writer thread, or alone after TRAILING_DELAY.
        self._background: list[_Pending] = []
        self._background_timer: asyncio.Handle | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Batches handed to the writer thread and not delivered yet (the loop's count).
        self._in_flight = 0
        # Whether the outbox's first write is a task's insert (see _hand_over).
        self._lone_insert = False
        # Hand-overs the writer merged into the batch it runs (the writer's own count).
        self._taken = 0
        # True while the event loop itself runs a batch (see _hand_over).
        self._on_loop = False
        # Held by whichever thread uses the writer's connection: the writer thread while it runs
        # a batch or begins or ends an idle transaction (see _open_next), the event loop while it
        # commits a lone submit (it does not wait for it: it hands the submit over instead).
        self._conn_lock = threading.Lock()
        # The empty transaction begun on the loop after a lone submit, and when it was begun.
        self._idle_timer: asyncio.TimerHandle | None = None
        self._idle_since = 0.0
        # How long the latest commit took (either thread writes it; a float store is atomic).
        self._last_commit = 0.0
        # Written by whichever thread commits (never both at once), read by scrapes.
        self._commit_seconds = Buckets(COMMIT_SECONDS_BOUNDS)
        self._commit_size = Buckets(COMMIT_SIZE_BOUNDS)
        self.chains = SqliteChainStore(self)

    # -- lifecycle ------------------------------------------------------------------------------
    def lock(self) -> None:
        """Take the file lock that keeps a second server off this database (idempotent)."""
        if self._lock_file is None:
            self._take_lock()

    async def open(self) -> None:
        self.lock()
        private_database(Path(self.path))
        self._writer_conn = connect_writer(self.path)
        self._writer_conn.executescript(SCHEMA)
        self._writer_conn.executescript(CHAIN_SCHEMA)
        migrate(self._writer_conn, [CHAINS])
        if not self._brief:
            reserve_wal(self._writer_conn, self.path, WAL_RESERVED_FRAMES)
        self._reader = _connect(self.path)
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._write_loop, name="tasky-sqlite-writer")
        self._thread.daemon = True
        self._thread.start()

    def _take_lock(self) -> None:
        private_dir(Path(self.path).parent)
        lock_path = self.path + ".lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        os.fchmod(fd, 0o600)  # a lock file left by an older version may be 0644
        handle = os.fdopen(fd, "r+")  # held open for the life of the store
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise StoreLocked(
                f"another Tasky server (pid {holder}) is using {self.path}; "
                "stop it or give this one another --data directory"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._lock_file = handle

    async def close(self) -> None:
        if self._thread is not None:
            self._hand_over()
            self._queue.put(None)
            await asyncio.to_thread(self._thread.join)
            self._thread = None
        # After the join: a lone submit's last commit may have armed it while the writer ended.
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        for conn in (self._reader, self._writer_conn):
            if conn is not None:
                conn.close()
        self._reader = self._writer_conn = None
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    # -- the writer thread ----------------------------------------------------------------------
    def _write_loop(self) -> None:
        conn = self._writer_conn
        assert conn is not None
        while True:
            first = self._next_hand_over(conn)
            if first is None:
                return
            batch = first
            stop = False
            self._taken = 1
            while len(batch) < _BATCH_MAX:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.extend(item)
                self._taken += 1
            with self._conn_lock:
                self._run_batch(conn, batch)
                if stop:
                    return
                self._open_next(conn)

    @staticmethod
    def _open_next(conn: WriterConnection) -> None:
        """Begin the next group commit's transaction now, while the event loop handles this
        one's outcomes, so that the next group finds it open.

        BEGIN lets go of the GIL like every step, and takes it back only when the event loop's
        thread lets go of it: under load, up to a switch interval (5 ms) later. At the head of a
        group that wait was on every caller's way (measured inside the writer: 0.7-1.4 ms per
        BEGIN with 32 submits in flight, 2.2-2.8 ms per group in the batch driver); here the
        writer has nothing else to do. The transaction is empty until the next group writes,
        and ended if none comes within IDLE_TRANSACTION (see _next_hand_over)."""
        # A failure leaves no transaction: the next group begins its own, and reports it.
        with contextlib.suppress(sqlite3.Error):
            conn.execute("BEGIN IMMEDIATE")

    def _next_hand_over(self, conn: WriterConnection) -> list[_Pending] | None:
        """The next hand-over from the event loop. An empty transaction _open_next began is
        ended once none has come for IDLE_TRANSACTION: while it is open this connection holds
        the database's write lock, and a write from outside (the sqlite3 shell, a seeding
        script) would wait for it."""
        try:
            return self._queue.get(timeout=IDLE_TRANSACTION)
        except queue.Empty:
            pass
        with self._conn_lock:
            _end_empty(conn)  # still the empty one, if any (a lone submit may have used it)
        return self._queue.get()

    def _delivered(self, outcomes: list[tuple[asyncio.Future[Any], bool, Any]], taken: int) -> None:
        self._in_flight -= taken
        _deliver(outcomes)

    def _run_batch(self, conn: WriterConnection, batch: list[_Pending]) -> None:
        outcomes: list[tuple[asyncio.Future[Any], bool, Any]] = []
        inserts = [p for p in batch if p.insert is not None]
        ops = [p for p in batch if p.op is not None]
        markers = [(p.future, True, None) for p in batch if p.op is None and p.insert is None]
        try:
            began = time.perf_counter()
            if not conn.in_transaction:  # else begun by _open_next after the previous group
                conn.execute("BEGIN IMMEDIATE")
            outcomes = self._run_inserts(conn, inserts) if inserts else []
            try:
                # Optimistic: no savepoints (they cost about a fifth of throughput in make bench).
                values = _run_ops(conn, [p.op for p in ops if p.op is not None])
            except Exception:
                # Rare: undo the whole batch and redo it with one savepoint per operation, so
                # only the one that fails is refused. Operations are plain functions of the
                # database, so a replay does the same thing again.
                conn.execute("ROLLBACK")
                conn.totals.clear()
                conn.execute("BEGIN IMMEDIATE")
                outcomes = self._run_inserts(conn, inserts) if inserts else []
                outcomes += self._run_ops_one_by_one(conn, ops)
            else:
                outcomes += [(p.future, True, v) for p, v in zip(ops, values, strict=True)]
            conn.totals.flush(conn)
            conn.execute("COMMIT")
            self._last_commit = time.perf_counter() - began
            self._commit_seconds.observe(self._last_commit)
            self._commit_size.observe(len(inserts) + len(ops))
            outcomes += markers
        except Exception as exc:
            conn.totals.clear()
            outcomes = [(p.future, False, exc) for p in batch]
            # The writer thread must outlive any failure (even of ROLLBACK, say on a full or
            # broken disk): if it died, every later write would wait forever instead of failing.
            with contextlib.suppress(Exception):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
        if self._on_loop:
            _deliver(outcomes)
            return
        loop = self._loop
        assert loop is not None
        # One wake-up of the event loop per batch, not one per operation.
        loop.call_soon_threadsafe(self._delivered, outcomes, self._taken)

    @staticmethod
    def _run_inserts(
        conn: sqlite3.Connection, inserts: list[_Pending]
    ) -> list[tuple[asyncio.Future[Any], bool, Any]]:
        """Insert the batch's new tasks in one statement, in submit order, each placed Running or
        Queued (see :class:`Placement`); if a row is refused (a duplicate id, which a chain
        re-submitting a recorded id could cause), only that caller fails.

        Inserts open the transaction, so on that rare failure the whole transaction is simply
        restarted and the rows inserted one by one. (A savepoint around every batch's inserts
        instead cost about a fifth of submit throughput in make bench.)
        """
        new = [p.insert for p in inserts if p.insert is not None]
        claims = any(n.claim is not None for n in new)
        placement = Placement(conn, claims)
        starts = [placement.place(n.fresh(), n.claim) for n in new]
        try:
            stored = insert_placed(conn, [n.task for n in new], [n.config for n in new], starts)
        except sqlite3.Error:
            conn.execute("ROLLBACK")
            conn.execute("BEGIN IMMEDIATE")
        else:
            return [(p.future, True, t) for p, t in zip(inserts, stored, strict=True)]
        outcomes: list[tuple[asyncio.Future[Any], bool, Any]] = []
        placement = Placement(conn, claims)
        for pending, item in zip(inserts, new, strict=True):
            start = placement.place(item.fresh(), item.claim)
            try:
                row = insert_one(conn, item.task, item.config, start)
            except sqlite3.Error as exc:  # a single INSERT that fails changes nothing
                placement.undo(item.task, start)
                outcomes.append((pending.future, False, exc))
            else:
                outcomes.append((pending.future, True, row))
        return outcomes

    @staticmethod
    def _run_ops_one_by_one(
        conn: WriterConnection, ops: list[_Pending]
    ) -> list[tuple[asyncio.Future[Any], bool, Any]]:
        outcomes: list[tuple[asyncio.Future[Any], bool, Any]] = []
        for pending in ops:
            assert pending.op is not None
            conn.execute("SAVEPOINT op")
            mark = conn.totals.mark()
            try:
                value = pending.op(conn)
            except Exception as exc:  # one bad operation must not sink the batch
                conn.execute("ROLLBACK TO op")
                conn.totals.undo_to(mark)
                outcomes.append((pending.future, False, exc))
            else:
                outcomes.append((pending.future, True, value))
            conn.execute("RELEASE op")
        return outcomes

    def _submit(self, op: Op | None, insert: _NewTask | None = None) -> asyncio.Future[Any]:
        loop = self._loop
        assert loop is not None, "store is not open"
        future: asyncio.Future[Any] = loop.create_future()
        # Group commit works best with big groups: everything submitted in this loop iteration
        # goes to the writer at once. Waking it per write made it commit a lone first row while
        # the rest of the burst queued behind that commit.
        self._outbox.append(_Pending(op, insert, future))
        if len(self._outbox) == 1:
            self._lone_insert = insert is not None
            loop.call_soon(self._hand_over)
        return future

    def _submit_trailing(self, op: Op, delay: float | None = None) -> asyncio.Future[Any]:
        """A write that no answer waits on: it joins the next group commit instead of adding one
        of its own (each costs an fsync, which the caller's next request would queue behind); if
        no other write comes within ``delay`` (default TRAILING_DELAY), it is committed alone."""
        loop = self._loop
        assert loop is not None, "store is not open"
        future: asyncio.Future[Any] = loop.create_future()
        self._trailing.append(_Pending(op, None, future))
        due = loop.time() + (TRAILING_DELAY if delay is None else delay)
        timer = self._trailing_timer
        if timer is None or self._trailing_due > due:  # the soonest due write sets the time
            if timer is not None:
                timer.cancel()
            self._trailing_due = due
            self._trailing_timer = loop.call_at(due, self._hand_over_trailing)
        return future

    def _hand_over_trailing(self) -> None:
        self._trailing_timer = None
        if self._trailing and not self._outbox:  # else the hand-over already due takes them
            self._hand_over()

    def _submit_background(self, op: Op) -> asyncio.Future[Any]:
        """A write that no answer waits on and that no other write concerns (an audit row, a
        token's use time): it joins the next hand-over to the writer thread, or is committed
        after TRAILING_DELAY with whatever else was held by then; never a lone submit's commit
        on the loop (see _hand_over)."""
        loop = self._loop
        assert loop is not None, "store is not open"
        future: asyncio.Future[Any] = loop.create_future()
        self._background.append(_Pending(op, None, future))
        if self._background_timer is None:
            self._background_timer = loop.call_at(
                loop.time() + TRAILING_DELAY, self._hand_over_background
            )
        return future

    def _hand_over_background(self) -> None:
        self._background_timer = None
        if self._background and not self._outbox:  # else the hand-over already due takes them
            self._hand_over()

    def _hand_over(self) -> None:
        conn = self._writer_conn
        inline = (
            len(self._outbox) == 1
            and self._lone_insert
            and self._in_flight == 0
            and self._last_commit < INLINE_COMMIT_MAX
            and conn is not None
        )
        if self._trailing:
            # Held writes first: they were made before this step's (the end of a task before
            # a write of this step that may concern it).
            self._outbox = self._trailing + self._outbox
            self._trailing = []
            if self._trailing_timer is not None:
                self._trailing_timer.cancel()
                self._trailing_timer = None
        if self._background and not inline:
            self._outbox = self._background + self._outbox
            self._background = []
            if self._background_timer is not None:
                self._background_timer.cancel()
                self._background_timer = None
        if not self._outbox:
            return
        batch, self._outbox = self._outbox, []
        # The writer thread is idle but may still be beginning its next transaction (the
        # outcomes of its last batch reach the loop first): then hand the submit over.
        if inline and conn is not None and self._conn_lock.acquire(blocking=False):
            # A lone submit while the writer is idle (with whatever was held for it: a lazy task
            # end, audit rows): commit it here. Only a submit: a task's end committed here on its
            # own held the next submit's request up behind its fsync (the blocking client lost a
            # third of its rate); on the writer the loop reads that request meanwhile. The
            # hand-over to the writer thread and back (a futex wake, a self-pipe wake of the
            # loop, two GIL hand-offs) is what this saves: about 50 us of the 226 us a lone
            # submit took in the store, and with lazy ends the blocking client's context
            # switches per task went from 8.5-13 to 2.5-4. Nothing is in flight, so the writer
            # is not touching its connection and commits keep their order. Under load writes
            # come in groups and go to the writer, whose commit overlaps the loop's next group.
            #
            # Audit rows and token use times (self._background) stay held: each lone commit
            # that carried the previous request's audit row wrote two more pages (the audit
            # table and its index: 9 WAL frames instead of 7), ~30 us of the commit; held, they
            # go ~100 at a time every TRAILING_DELAY.
            self._on_loop = True
            try:
                self._run_batch(conn, batch)
            finally:
                self._on_loop = False
                self._conn_lock.release()
            # The next lone submit's BEGIN is made here once this answer is out (the callbacks
            # that _run_batch's outcomes scheduled run first), while the client reads it and
            # sends its next request. At the head of each lone submit it was on the answer's way:
            # wrk's lone p50 fell in 20 of 24 alternated pairs of fresh servers, median -32 us
            # (bench/README.md). Handing that BEGIN to the writer thread instead made the p50
            # worse: waking the thread took the GIL and a core just as the next request came.
            loop = self._loop
            assert loop is not None
            self._idle_since = loop.time()
            loop.call_soon(self._begin_next_on_loop)
            return
        self._in_flight += 1
        self._queue.put(batch)

    def _begin_next_on_loop(self) -> None:
        """After a lone submit committed on the loop: begin the next one's transaction, unless
        the writer thread has the connection or writes are on their way to it. Ended after
        IDLE_TRANSACTION without another lone submit (_end_idle_on_loop), as the writer ends
        the one it begins (_next_hand_over)."""
        conn = self._writer_conn
        if conn is None or self._in_flight or self._outbox or conn.in_transaction:
            return
        if not self._conn_lock.acquire(blocking=False):
            return
        try:
            self._open_next(conn)
        finally:
            self._conn_lock.release()
        if self._idle_timer is None and self._loop is not None:
            self._idle_timer = self._loop.call_later(IDLE_TRANSACTION, self._end_idle_on_loop)

    def _end_idle_on_loop(self) -> None:
        """End the empty transaction _begin_next_on_loop began once no lone submit has come for
        IDLE_TRANSACTION, so that a write from outside the server gets the write lock. One
        timer, moved on rather than made anew for every submit."""
        loop = self._loop
        assert loop is not None
        self._idle_timer = None
        due = self._idle_since + IDLE_TRANSACTION
        if loop.time() < due:
            self._idle_timer = loop.call_at(due, self._end_idle_on_loop)
            return
        conn = self._writer_conn
        if conn is None or self._in_flight or not self._conn_lock.acquire(blocking=False):
            return  # the writer thread has it: it ends its own idle transaction
        try:
            _end_empty(conn)
        finally:
            self._conn_lock.release()

    # -- for the store package's own modules (the chain store) ------------------------------------
    async def write(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``op(conn)`` inside the writer's next group commit; returns what it returned, or
        raises what it raised (then only ``op`` is undone). Nothing outside tasky.store sees a
        connection."""
        result: T = await self._submit(op)
        return result

    @property
    def reader(self) -> sqlite3.Connection:
        """The event loop's read connection (index lookups only: it blocks the loop)."""
        return self._r

    # -- task operations (see tasky.store.base.Store) --------------------------------------------
    async def submit(self, task: TaskRecord, claim: Claim | None = None) -> TaskRecord:
        stored: TaskRecord = await self._submit(None, _NewTask(task, claim))
        return stored

    async def submit_with_key(
        self, task: TaskRecord, key: IdempotencyRecord, claim: Claim | None = None
    ) -> TaskRecord | IdempotencyRecord:
        new = _NewTask(task, claim)
        keyed = dataclasses.replace(key, target_id=task.id)

        def op(conn: sqlite3.Connection) -> TaskRecord | IdempotencyRecord:
            existing = claim_key(conn, keyed)
            if existing is not None:
                return existing
            start = Placement(conn, claim is not None).place(new.fresh(), new.claim)
            return insert_one(conn, new.task, new.config, start)

        found: TaskRecord | IdempotencyRecord = await self._submit(op)
        return found

    async def submit_many(
        self, tasks: Sequence[TaskRecord], claim: Claim | None = None
    ) -> list[TaskRecord]:
        new = [_NewTask(task, claim) for task in tasks]

        def op(conn: sqlite3.Connection) -> list[TaskRecord]:
            # An operation runs whole or not at all (the writer undoes a failed one alone), so
            # one refused row leaves none of the others.
            placement = Placement(conn, claim is not None)
            starts = [placement.place(n.fresh(), n.claim) for n in new]
            if not new:
                return []
            return insert_placed(conn, [n.task for n in new], [n.config for n in new], starts)

        stored: list[TaskRecord] = await self._submit(op)
        return stored

    async def submit_many_with_key(
        self, tasks: Sequence[TaskRecord], key: IdempotencyRecord, claim: Claim | None = None
    ) -> list[TaskRecord] | IdempotencyRecord:
        new = [_NewTask(task, claim) for task in tasks]
        keyed = dataclasses.replace(key, target_id=batch_target([t.id for t in tasks]))

        def op(conn: sqlite3.Connection) -> list[TaskRecord] | IdempotencyRecord:
            existing = claim_key(conn, keyed)
            if existing is not None:
                return existing
            placement = Placement(conn, claim is not None)
            starts = [placement.place(n.fresh(), n.claim) for n in new]
            if not new:
                return []
            return insert_placed(conn, [n.task for n in new], [n.config for n in new], starts)

        found: list[TaskRecord] | IdempotencyRecord = await self._submit(op)
        return found

    def insert_many_now(self, tasks: Iterable[TaskRecord]) -> None:
        conn = _connect(self.path)
        try:
            conn.execute("BEGIN IMMEDIATE")
            # The rows count themselves (insert_rows): a file an earlier version left, not yet
            # opened by this one, still has the per-row trigger, which would count them twice.
            conn.execute("DROP TRIGGER IF EXISTS count_insert")
            insert_rows(conn, [insert_params(t) for t in tasks])
            conn.execute("COMMIT")
        finally:
            conn.close()

    def count_tokens_now(self) -> int:
        """Stored tokens, read before the store opens (is it safe to listen beyond loopback?)."""
        conn = _connect(self.path)
        try:
            count: int = conn.execute("SELECT count(*) FROM tokens").fetchone()[0]
        except sqlite3.OperationalError:  # a new database: no tokens table yet
            return 0
        finally:
            conn.close()
        return count

    async def claim(self, worker: str, claim: Claim, at: float) -> list[TaskRecord]:
        rows: list[list[Any]] = await self._submit(lambda conn: claim_rows(conn, worker, claim, at))
        return claimed_tasks(rows, claim, at)

    async def next_runnable_at(
        self, worker: str, targets: Sequence[str] | None = None
    ) -> float | None:
        # The first entry of the worker's Queued range of tasks_queue: ready_at is the end of a
        # retry's backoff, or when the task joined the queue.
        if targets is None:
            row = self._r.execute(
                "SELECT ready_at FROM tasks WHERE worker = ? AND status = 'Queued' "
                "ORDER BY ready_at LIMIT 1",
                (worker,),
            ).fetchone()
        else:
            row = self._r.execute(
                "SELECT ready_at FROM tasks WHERE worker = ? AND status = 'Queued' "
                "AND (target IS NULL OR target IN (SELECT value FROM json_each(?))) "
                "ORDER BY ready_at LIMIT 1",
                (worker, json_text(list(targets))),
            ).fetchone()
        return None if row is None else row[0]

    async def finish(
        self, task_id: str, owner: str, attempt: int, outcome: Outcome, lazy: bool = False
    ) -> bool:
        op = moves.finish(task_id, owner, attempt, outcome)
        if not lazy:
            return await self._move(op)
        # Held for the next write's commit (within FINISH_WAIT): a client submitting one task
        # after another sends its next submit within a fraction of a millisecond, and the end
        # of the task before then rides in its commit instead of taking an fsync of its own that
        # the submit would queue behind (bench/drivers.py sync, no-op tasks: 1.5 -> 1.0 commits,
        # 10 -> 3-6 context switches and about a fifth less server CPU per task).
        moved: bool = await self._submit_trailing(op, FINISH_WAIT)
        return moved

    async def finish_many(self, ends: Sequence[AttemptEnd], lazy: bool = False) -> list[bool]:
        op = moves.Finishes([moves.finish(e.task_id, e.owner, e.attempt, e.outcome) for e in ends])
        # Lazy as a lone finish is (see finish).
        moved: list[bool] = await (
            self._submit_trailing(op, FINISH_WAIT) if lazy else self._submit(op)
        )
        return moved

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
        return await self._move(
            moves.requeue("retry_later", task_id, owner, attempt, error, at, run_after, traceback)
        )

    async def requeue_interrupted(
        self, task_id: str, owner: str | None, attempt: int, reason: str, at: float
    ) -> bool:
        return await self._move(
            moves.requeue("requeue_interrupted", task_id, owner, attempt, reason, at)
        )

    async def fail_interrupted(
        self, task_id: str, owner: str | None, attempt: int, reason: str, at: float
    ) -> bool:
        return await self._move(moves.fail_interrupted(task_id, owner, attempt, reason, at))

    async def cancel(self, task_id: str, at: float) -> bool:
        return await self._move(moves.cancel(task_id, at))

    async def pause(self, task_id: str, owner: str | None, at: float) -> bool:
        return await self._move(moves.pause(task_id, owner, at))

    async def resume(self, task_id: str, owner: str | None, at: float) -> bool:
        return await self._move(moves.resume(task_id, owner, at))

    async def rerun(self, task_id: str, at: float) -> bool:
        return await self._move(moves.rerun(task_id, at))

    async def update_config(self, task_id: str, config: Any) -> bool:
        return await self._move(moves.update_config(task_id, config))

    async def _move(self, op: moves.Move) -> bool:
        moved: bool = await self._submit(op)
        return moved

    async def heartbeat(self, owner: str, task_ids: Sequence[str], lease_until: float) -> int:
        held: int = await self._submit(moves.heartbeat(owner, task_ids, lease_until))
        return held

    async def release(self, owner: str) -> int:
        released: int = await self._submit(moves.release(owner))
        return released

    async def held_tasks(self, expired_before: float | None = None) -> list[TaskRecord]:
        # A Running task without an owner can only come from an old or hand-made row: taken too.
        sql = (
            f"SELECT {COLUMNS} FROM tasks WHERE (status = 'Running' OR "
            "(status = 'Paused' AND owner IS NOT NULL))"
        )
        params: tuple[Any, ...] = ()
        if expired_before is not None:
            sql += " AND (lease_until IS NULL OR lease_until < ?)"
            params = (expired_before,)
        rows = self._r.execute(sql + " ORDER BY seq", params).fetchall()
        return [row_to_task(r) for r in rows]

    async def record_child(self, child: ChildRecord) -> None:
        row = (child.task_id, child.pgid, child.start_ticks, child.boot_id, child.mark, child.node)

        def op(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO task_children "
                "(task_id, pgid, start_ticks, boot_id, mark, node) VALUES (?, ?, ?, ?, ?, ?)",
                row,
            )

        await self._submit(op)

    async def forget_children(self, task_ids: Sequence[str]) -> None:
        rows = [(task_id,) for task_id in task_ids]

        def op(conn: sqlite3.Connection) -> None:
            conn.executemany("DELETE FROM task_children WHERE task_id = ?", rows)

        await self._submit(op)

    async def set_progress(self, updates: Sequence[tuple[str, float | None, str | None]]) -> None:
        rows = [(fraction, message, task_id) for task_id, fraction, message in updates]

        def op(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "UPDATE tasks SET progress = ?, progress_message = ? WHERE id = ?", rows
            )

        await self._submit(op)

    async def append_logs(self, lines: Sequence[tuple[str, float, str]], max_lines: int) -> None:
        rows = list(lines)

        def op(conn: sqlite3.Connection) -> None:
            touched: dict[str, int] = {}
            for task_id, ts, line in rows:
                last = touched.get(task_id)
                if last is None:
                    found = conn.execute(
                        "SELECT max(seq) FROM task_logs WHERE task_id = ?", (task_id,)
                    ).fetchone()[0]
                    last = found or 0
                last += 1
                touched[task_id] = last
                conn.execute(
                    "INSERT INTO task_logs (task_id, seq, ts, line) VALUES (?, ?, ?, ?)",
                    (task_id, last, ts, line),
                )
            for task_id, last in touched.items():
                dropped = conn.execute(
                    "DELETE FROM task_logs WHERE task_id = ? AND seq <= ?",
                    (task_id, last - max_lines),
                ).rowcount
                if dropped:
                    conn.execute(
                        "UPDATE tasks SET logs_dropped = logs_dropped + ? WHERE id = ?",
                        (dropped, task_id),
                    )

        await self._submit(op)

    # -- reads ----------------------------------------------------------------------------------
    @property
    def _r(self) -> sqlite3.Connection:
        assert self._reader is not None, "store is not open"
        return self._reader

    async def get(self, task_id: str) -> TaskRecord | None:
        row = self._r.execute(f"SELECT {COLUMNS} FROM tasks WHERE id = ?", (task_id,)).fetchone()
        return None if row is None else row_to_task(row)

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
            # Ids are lowercase hex, and "g" sorts after every hex digit: the ids that start with
            # the prefix are exactly those in [prefix, prefix + "g"), a range the id index reads.
            conditions += [("id >= ?", id_prefix), ("id < ?", id_prefix + "g")]
        conditions += created_between(created_after, created_before, "?")
        if error_contains:
            # SQLite's lower() on both sides: the same (ASCII) folding for the text and the error.
            conditions.append(("instr(lower(error), lower(?)) > 0", error_contains))
        rows, next_cursor = read_page(
            self._r,
            f"SELECT {COLUMNS} FROM tasks",
            task_filters(status, worker, chain_id),
            limit,
            cursor,
            descending,
            conditions,
        )
        return TaskPage([row_to_task(r) for r in rows], next_cursor)

    async def logs(self, task_id: str, after: int = 0, limit: int = 1000) -> list[LogLine]:
        rows = self._r.execute(
            "SELECT seq, ts, line FROM task_logs WHERE task_id = ? AND seq > ? "
            "ORDER BY seq LIMIT ?",
            (task_id, after, limit),
        ).fetchall()
        return [LogLine(*r) for r in rows]

    async def attempts(self, task_id: str) -> list[AttemptRecord]:
        rows = self._r.execute(
            "SELECT attempt, status, started_at, finished_at, error, result, traceback, node, "
            f"paused_seconds FROM task_attempts WHERE task_id = ?1 UNION ALL {moves.FINAL_ATTEMPT} "
            "ORDER BY 1",
            (task_id,),
        ).fetchall()
        return [
            AttemptRecord(r[0], Status(r[1]), r[2], r[3], r[4], json_value(r[5]), r[6], r[7], r[8])
            for r in rows
        ]

    async def worker_stats(self, worker: str) -> WorkerStats:
        stats = WorkerStats(worker=worker)
        for status, n in self._r.execute(
            "SELECT status, n FROM status_counts WHERE worker = ?", (worker,)
        ):
            stats.by_status[status] = n
        row = self._r.execute(
            "SELECT finished, run_time_sum, wait_sum, wait_count FROM worker_timing "
            "WHERE worker = ?",
            (worker,),
        ).fetchone()
        if row is not None:
            stats.finished, stats.run_time_sum, stats.wait_sum, stats.wait_count = row
        stats.run_time_hist = dict(
            self._r.execute("SELECT bucket, n FROM run_time_hist WHERE worker = ?", (worker,))
        )
        return stats

    async def queue_positions(self, worker: str, task_ids: Sequence[str]) -> dict[str, int]:
        return queue_positions(self._r, worker, task_ids)

    async def finished_per_minute(
        self, worker: str, since_minute: int
    ) -> list[tuple[int, str, int]]:
        rows = self._r.execute(
            "SELECT minute, status, n FROM finished_per_minute WHERE worker = ? AND minute >= ? "
            "ORDER BY minute",
            (worker, since_minute),
        ).fetchall()
        return [(r[0], r[1], r[2]) for r in rows]

    async def children(self) -> list[ChildRecord]:
        rows = self._r.execute(
            "SELECT task_id, pgid, start_ticks, boot_id, mark, node FROM task_children"
        ).fetchall()
        return [ChildRecord(*row) for row in rows]

    async def oldest_queued_at(self, worker: str) -> float | None:
        # The first Queued row by seq through the (worker, status, seq) index: O(log n) however
        # long the queue. A retried task keeps its seq but gets a new queued_at.
        row = self._r.execute(
            "SELECT queued_at FROM tasks WHERE worker = ? AND status = ? ORDER BY seq LIMIT 1",
            (worker, Status.QUEUED.value),
        ).fetchone()
        return None if row is None else row[0]

    def commit_stats(self) -> CommitStats:
        return CommitStats(self._commit_seconds.snapshot(), self._commit_size.snapshot())

    # -- API tokens -----------------------------------------------------------------------------
    # -- nodes ------------------------------------------------------------------------------------
    async def register_node(self, node: NodeRecord, alive_after: float) -> NodeRecord | None:
        row = node_values(node)

        def op(conn: sqlite3.Connection) -> NodeRecord | None:
            found = conn.execute(
                f"SELECT {_NODE_COLUMNS} FROM nodes WHERE name = ?", (node.name,)
            ).fetchone()
            if found is not None:
                known = row_to_node(found)
                if node_is_alive(known, node.owner, alive_after):
                    return known
            conn.execute(
                f"INSERT OR REPLACE INTO nodes ({_NODE_COLUMNS}) VALUES ({', '.join('?' * 9)})",
                row,
            )
            return None

        refused: NodeRecord | None = await self._submit(op)
        return refused

    async def node_heartbeat(self, name: str, owner: str, at: float) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "UPDATE nodes SET heartbeat_at = ? "
                "WHERE name = ? AND owner = ? AND stopped_at IS NULL",
                (at, name, owner),
            )
            return cursor.rowcount == 1

        done: bool = await self._submit(op)
        return done

    async def stop_node(self, name: str, owner: str, at: float) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "UPDATE nodes SET stopped_at = ? WHERE name = ? AND owner = ?", (at, name, owner)
            )
            return cursor.rowcount == 1

        done: bool = await self._submit(op)
        return done

    async def list_nodes(self) -> list[NodeRecord]:
        rows = self._r.execute(
            f"SELECT {_NODE_COLUMNS}, (SELECT count(*) FROM tasks t "
            f"WHERE t.owner = nodes.owner AND t.status IN ('Running', 'Paused')) "
            "FROM nodes ORDER BY name"
        ).fetchall()
        return [row_to_node(row) for row in rows]

    async def create_token(self, token: TokenRecord) -> bool:
        row = (
            token.name,
            token.token_hash,
            token.role,
            None if token.workers is None else json_text(token.workers),
            token.created_at,
            token.expires_at,
        )

        def op(conn: sqlite3.Connection) -> bool:
            inserted: bool = (
                conn.execute(
                    "INSERT INTO tokens (name, token_hash, role, workers, created_at, expires_at) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    row,
                ).rowcount
                == 1
            )
            return inserted

        created: bool = await self._submit(op)
        return created

    async def revoke_token(self, name: str) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            gone: bool = conn.execute("DELETE FROM tokens WHERE name = ?", (name,)).rowcount > 0
            return gone

        revoked: bool = await self._submit(op)
        return revoked

    async def touch_token(self, name: str, when: float) -> None:
        def op(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE tokens SET last_used_at = ? WHERE name = ?", (when, name))

        await self._submit_background(op)

    async def token_by_hash(self, token_hash: str) -> TokenRecord | None:
        row = self._r.execute(
            f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE token_hash = ?", (token_hash,)
        ).fetchone()
        return None if row is None else row_to_token(row)

    async def list_tokens(self) -> list[TokenRecord]:
        rows = self._r.execute(f"SELECT {_TOKEN_COLUMNS} FROM tokens ORDER BY name").fetchall()
        return [row_to_token(r) for r in rows]

    async def count_tokens(self) -> int:
        count: int = self._r.execute("SELECT count(*) FROM tokens").fetchone()[0]
        return count

    # -- audit log ------------------------------------------------------------------------------
    async def record_audit(self, entries: Sequence[AuditRecord]) -> None:
        rows = [(e.at, e.token, e.client, e.method, e.route, e.target, e.status) for e in entries]

        def op(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO audit (at, token, client, method, route, target, status) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

        await self._submit_background(op)

    async def list_audit(
        self, *, limit: int = 100, cursor: int | None = None, descending: bool = False
    ) -> AuditPage:
        rows, next_cursor = read_page(
            self._r, f"SELECT {_AUDIT_COLUMNS} FROM audit", {}, limit, cursor, descending
        )
        return AuditPage([row_to_audit(r) for r in rows], next_cursor)

    async def prune_audit(self, before: float, limit: int) -> int:
        def op(conn: sqlite3.Connection) -> int:
            # Oldest first by seq (the insertion order, so also by time) through the primary key.
            deleted: int = conn.execute(
                "DELETE FROM audit WHERE seq IN "
                "(SELECT seq FROM audit WHERE at < ? ORDER BY seq LIMIT ?)",
                (before, limit),
            ).rowcount
            return deleted

        pruned: int = await self._submit(op)
        return pruned

    # -- idempotency keys -----------------------------------------------------------------------
    async def find_key(self, principal: str, key: str, now: float) -> IdempotencyRecord | None:
        row = self._r.execute(
            f"SELECT {KEY_COLUMNS} FROM idempotency_keys "
            "WHERE principal = ? AND key = ? AND expires_at > ?",
            (principal, key, now),
        ).fetchone()
        return None if row is None else IdempotencyRecord(*row)

    async def prune_keys(self, before: float, limit: int) -> int:
        def op(conn: sqlite3.Connection) -> int:
            deleted: int = conn.execute(
                "DELETE FROM idempotency_keys WHERE (principal, key) IN (SELECT principal, key "
                "FROM idempotency_keys WHERE expires_at < ? ORDER BY expires_at LIMIT ?)",
                (before, limit),
            ).rowcount
            return deleted

        pruned: int = await self._submit(op)
        return pruned

    # -- callbacks ------------------------------------------------------------------------------
    async def add_callback(self, callback: CallbackRecord) -> None:
        row = (callback.kind, callback.target_id, callback.url, callback.created_at)

        def op(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO callbacks (kind, target_id, url, created_at) VALUES (?, ?, ?, ?)", row
            )

        await self._submit(op)

    async def drop_callback(self, kind: str, target_id: str) -> None:
        key = (kind, target_id)

        def op(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM callbacks WHERE kind = ? AND target_id = ?", key)
            conn.execute("DELETE FROM callback_attempts WHERE kind = ? AND target_id = ?", key)

        await self._submit(op)

    async def arm_callback(self, kind: str, target_id: str, at: float) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            armed: bool = (
                conn.execute(
                    "UPDATE callbacks SET next_at = ? WHERE kind = ? AND target_id = ? "
                    "AND state = 'pending' AND next_at IS NULL",
                    (at, kind, target_id),
                ).rowcount
                == 1
            )
            return armed

        result: bool = await self._submit(op)
        return result

    async def waiting_callbacks(self) -> list[tuple[str, str]]:
        rows = self._r.execute(
            "SELECT kind, target_id FROM callbacks WHERE state = 'pending' AND next_at IS NULL"
        ).fetchall()
        return [(r[0], r[1]) for r in rows]

    async def due_callbacks(self, now: float, limit: int) -> list[CallbackRecord]:
        rows = self._r.execute(
            "SELECT kind, target_id, url, created_at, state, next_at FROM callbacks "
            "WHERE state = 'pending' AND next_at <= ? ORDER BY next_at LIMIT ?",
            (now, limit),
        ).fetchall()
        return [CallbackRecord(*r) for r in rows]

    async def claim_callbacks(self, now: float, limit: int, until: float) -> list[CallbackRecord]:
        def op(conn: sqlite3.Connection) -> list[CallbackRecord]:
            rows = conn.execute(
                "SELECT kind, target_id, url, created_at, state, next_at FROM callbacks "
                "WHERE state = 'pending' AND next_at <= ? ORDER BY next_at LIMIT ?",
                (now, limit),
            ).fetchall()
            conn.executemany(
                "UPDATE callbacks SET next_at = ? WHERE kind = ? AND target_id = ?",
                [(until, r[0], r[1]) for r in rows],
            )
            return [CallbackRecord(*r) for r in rows]

        result: list[CallbackRecord] = await self._submit(op)
        return result

    async def record_callback_attempt(
        self,
        kind: str,
        target_id: str,
        attempt: CallbackAttempt,
        state: str,
        next_at: float | None,
    ) -> None:
        key = (kind, target_id)
        values = (attempt.at, attempt.status_code, attempt.error)

        def op(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO callback_attempts (kind, target_id, n, at, status_code, error) "
                "SELECT ?, ?, coalesce(max(n), 0) + 1, ?, ?, ? FROM callback_attempts "
                "WHERE kind = ? AND target_id = ?",
                (*key, *values, *key),
            )
            conn.execute(
                "UPDATE callbacks SET state = ?, next_at = ? WHERE kind = ? AND target_id = ?",
                (state, next_at, *key),
            )

        await self._submit(op)

    async def get_callback(self, kind: str, target_id: str) -> CallbackRecord | None:
        key = (kind, target_id)
        # Both reads in one snapshot: an attempt and the state it left are one commit, and two
        # separate reads could see the attempt beside the state from before it.
        self._r.execute("BEGIN")
        try:
            row = self._r.execute(
                "SELECT kind, target_id, url, created_at, state, next_at FROM callbacks "
                "WHERE kind = ? AND target_id = ?",
                key,
            ).fetchone()
            if row is None:
                return None
            found = CallbackRecord(*row)
            found.attempts = [
                CallbackAttempt(*r)
                for r in self._r.execute(
                    "SELECT at, status_code, error FROM callback_attempts "
                    "WHERE kind = ? AND target_id = ? ORDER BY n",
                    key,
                )
            ]
        finally:
            self._r.execute("COMMIT")
        return found

    # -- schedules ------------------------------------------------------------------------------
    async def create_schedule(self, schedule: ScheduleRecord) -> bool:
        row = _schedule_params(schedule)

        def op(conn: sqlite3.Connection) -> bool:
            inserted: bool = (
                conn.execute(_SCHEDULE_INSERT + " ON CONFLICT DO NOTHING", row).rowcount == 1
            )
            return inserted

        created: bool = await self._submit(op)
        return created

    async def save_schedule(self, schedule: ScheduleRecord) -> None:
        row = _schedule_params(schedule)

        def op(conn: sqlite3.Connection) -> None:
            # The timetable's next due time moves only when the timing itself changed.
            conn.execute(
                _SCHEDULE_INSERT + " ON CONFLICT (name) DO UPDATE SET "
                "next_run = CASE WHEN cron IS excluded.cron AND interval IS excluded.interval "
                "AND timezone = excluded.timezone THEN next_run ELSE excluded.next_run END, "
                "worker = excluded.worker, chain = excluded.chain, config = excluded.config, "
                "cron = excluded.cron, interval = excluded.interval, "
                "timezone = excluded.timezone, catch_up = excluded.catch_up, "
                "source = excluded.source",
                row,
            )

        await self._submit(op)

    async def get_schedule(self, name: str) -> ScheduleRecord | None:
        row = self._r.execute(
            f"SELECT {_SCHEDULE_COLUMNS} FROM schedules WHERE name = ?", (name,)
        ).fetchone()
        return None if row is None else row_to_schedule(row)

    async def list_schedules(self) -> list[ScheduleRecord]:
        rows = self._r.execute(f"SELECT {_SCHEDULE_COLUMNS} FROM schedules ORDER BY name")
        return [row_to_schedule(r) for r in rows.fetchall()]

    async def delete_schedule(self, name: str) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            gone: bool = conn.execute("DELETE FROM schedules WHERE name = ?", (name,)).rowcount > 0
            return gone

        deleted: bool = await self._submit(op)
        return deleted

    async def set_schedule_paused(self, name: str, paused: bool, next_run: float) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            found: bool = (
                conn.execute(
                    "UPDATE schedules SET paused = ?, next_run = CASE WHEN ? THEN next_run "
                    "ELSE ? END WHERE name = ?",
                    (int(paused), int(paused), next_run, name),
                ).rowcount
                > 0
            )
            return found

        changed: bool = await self._submit(op)
        return changed

    async def claim_schedule_run(
        self, name: str, due: float, next_run: float, run_id: str | None, at: float
    ) -> bool:
        if run_id is None:
            sql = "UPDATE schedules SET next_run = ? WHERE name = ? AND next_run = ? AND paused = 0"
            params: tuple[Any, ...] = (next_run, name, due)
        else:
            sql = (
                "UPDATE schedules SET next_run = ?, last_run_at = ?, last_run_id = ?, "
                "last_error = NULL WHERE name = ? AND next_run = ? AND paused = 0"
            )
            params = (next_run, at, run_id, name, due)

        def op(conn: sqlite3.Connection) -> bool:
            won: bool = conn.execute(sql, params).rowcount == 1
            return won

        claimed: bool = await self._submit(op)
        return claimed

    async def record_schedule_run(
        self, name: str, run_id: str | None, at: float, error: str | None
    ) -> None:
        if run_id is None:
            sql = "UPDATE schedules SET last_error = ? WHERE name = ?"
            params: tuple[Any, ...] = (error, name)
        else:
            sql = (
                "UPDATE schedules SET last_run_at = ?, last_run_id = ?, last_error = ? "
                "WHERE name = ?"
            )
            params = (at, run_id, error, name)

        def op(conn: sqlite3.Connection) -> None:
            conn.execute(sql, params)

        await self._submit(op)

    # -- retention ------------------------------------------------------------------------------
    async def prune_finished(self, before: float, worker: str | None, limit: int) -> int:
        def op(conn: sqlite3.Connection) -> int:
            ids: list[str] = []
            for name in _workers_of(conn, worker):
                if len(ids) >= limit:
                    break
                ids += [
                    r[0]
                    for r in conn.execute(
                        f"SELECT id {_PRUNABLE} LIMIT ?", (name, before, limit - len(ids))
                    )
                ]
            return delete_tasks(conn, ids)

        pruned: int = await self._submit(op)
        return pruned

    async def count_prunable(self, before: float, worker: str | None) -> int:
        return sum(
            self._r.execute(f"SELECT count(*) {_PRUNABLE}", (name, before)).fetchone()[0]
            for name in _workers_of(self._r, worker)
        )


# Finished tasks outside chains (a chain's tasks go with the chain) of one worker that ended
# before a time: a range of the tasks_ended index.
_PRUNABLE = (
    f"FROM tasks WHERE {_FINISHED_SQL} AND worker = ? AND finished_at < ? AND chain_id IS NULL"
)


def _workers_of(conn: sqlite3.Connection, worker: str | None) -> list[str]:
    """``[worker]``, or every worker that ever had a task (a few rows of status_counts): one
    index range per worker, where a query over all of them would scan every finished task."""
    if worker is not None:
        return [worker]
    return [r[0] for r in conn.execute("SELECT DISTINCT worker FROM status_counts")]


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
        int(s.paused),
        s.source,
        s.last_run_at,
        s.last_run_id,
        s.last_error,
    )


def _deliver(outcomes: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for future, ok, value in outcomes:
        if future.done():  # the caller went away (cancelled); the write still happened
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
