"""The tasks table of the SQLite store: rows, inserts, and where a new task goes in the queue.

Every function here runs on the writer's connection inside its transaction (or on the reader for
reads). Queue order is ``(ready_at, seq)`` per worker: ``ready_at`` is when the task (re)joined
the queue (for a retry, the end of its backoff), an internal column that never leaves the store.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from tasky.states import MOVES, Status
from tasky.store.records import Claim, TaskRecord
from tasky.store.sql_rows import TASK_COLUMNS
from tasky.store.sql_rows import json_text as json_text  # the sqlite modules import it from here
from tasky.store.sql_rows import json_value as json_value  # the sqlite modules import it from here
from tasky.store.sql_rows import row_to_task as row_to_task  # importers take it from here

# A config whose JSON text is longer than this is kept in task_configs, its task row holding ''
# (never a config's text: not JSON). Every status change rewrites the whole row, and a row too
# long for its page carries its config on a chain of overflow pages that each rewrite copies
# again: a task with a 64 KiB config wrote it to the WAL at its submit, its claim and its end.
# Aside, the config is written once, and the row's writes are as small as any task's (a
# standalone commit of a finish: 0.56-0.70 ms p50 with the config in the row, 0.25-0.27 aside).
# Below the mark a row fits in its page, and an extra table row would only cost the insert.
CONFIG_ASIDE = 2048


def kept_aside(config_text: str) -> bool:
    """Whether a config of this JSON text is kept in task_configs (see CONFIG_ASIDE). Every
    write of a config asks here: an insert, a batch's inserts, a config's update."""
    return len(config_text) > CONFIG_ASIDE


# The config as read: from its row, or from task_configs when the row holds ''. coalesce stops at
# its first value that is not NULL, so the side table is looked up for configs kept there only.
_CONFIG_READ = (
    "coalesce(nullif(config, ''), "
    "(SELECT text FROM task_configs AS aside WHERE aside.seq = tasks.seq)) AS config"
)
# TASK_COLUMNS as SQLite reads them from ``tasks`` (PostgreSQL keeps every config in its row:
# it stores long values out of line itself, and an update that leaves them alone keeps them).
COLUMNS = TASK_COLUMNS.replace(" config,", f" {_CONFIG_READ},", 1)
_SET_ASIDE = "INSERT INTO task_configs (seq, text) VALUES (?, ?)"
INSERT = (
    "INSERT INTO tasks (id, worker, status, config, created_at, queued_at, started_at, "
    "finished_at, attempt, retries, timeout, owner, lease_until, run_after, chain_id, ready_at, "
    "target, node) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

# A task holds a slot of its worker from its claim until it ends: Running, or Paused after it
# started. Only such a task has an owner (every move out of it clears the owner), which lets a
# partial index on ``owner`` count a worker's slots without reading its waiting tasks.
HOLDS_SLOT = "owner IS NOT NULL AND status IN ('Running', 'Paused')"
_WAITS = "status <> 'Running' AND owner IS NULL"


@functools.cache
def guard(move: str, held: bool | None = None) -> str:
    """The SQL condition a task must meet for the store operation ``move``: its status is one
    of the sources ``tasky.states.MOVES`` names, and it holds a slot or not as the move (or,
    where the move allows both, ``held``) says. Status names are literals (never user input),
    so SQLite can pick an index by them."""
    spec = MOVES[move]
    statuses = ", ".join(f"'{status.value}'" for status in sorted(spec.sources))
    # One status as ``=``: SQLite proves a partial index's ``status = 'Queued'`` only from an
    # equality (with ``IN ('Queued')`` the claim sorted the worker's whole queue instead).
    condition = f"status = {statuses}" if len(spec.sources) == 1 else f"status IN ({statuses})"
    holds = spec.held if spec.held is not None else held
    if holds is True:
        condition += " AND (status = 'Running' OR owner IS NOT NULL)"
    elif holds is False:
        condition += f" AND {_WAITS}"
    return condition


# The oldest runnable Queued tasks of a worker that a claimant may take (untargeted, or
# targeting one of the claim's targets, given as a JSON array), in queue order: an index range
# of tasks_queue, stepping over tasks that wait for other nodes.
RUNNABLE = (
    f"SELECT {COLUMNS} FROM tasks WHERE worker = ? AND {guard('claim')} "
    "AND (run_after IS NULL OR run_after <= ?) "
    "AND (target IS NULL OR target IN (SELECT value FROM json_each(?))) "
    "ORDER BY ready_at, seq LIMIT ?"
)
# REAL columns as JSON numbers that read back as the very float stored: json_array writes a REAL
# with 15 significant digits (a timestamp would lose its last microseconds), printf's "%!.17g"
# with all it takes to round-trip.
REAL_COLUMNS = frozenset(
    (
        *("created_at", "queued_at", "started_at", "finished_at", "timeout", "progress"),
        *("lease_until", "run_after", "paused_seconds", "paused_at", "ready_at"),
    )
)


def exact_json(column: str) -> str:
    """A REAL column as a JSON value that reads back as the very float stored (or null)."""
    return f"iif({column} IS NULL, NULL, json(printf('%!.17g', {column})))"


def _as_json(column: str) -> str:
    return exact_json(column) if column in REAL_COLUMNS else column


# RUNNABLE's rows as one JSON array of arrays (each ends with its ready_at, to put them in queue
# order): the writer thread steps one row, not one per task. Python's sqlite3 lets go of the GIL
# around each step, and while the event loop's thread runs Python the writer waits up to a
# switch interval (5 ms) to take it back: in a standalone script whose main thread ran Python
# all along, 1,000 rows read row by row took 360 ms, as one row 8 ms (3.2 and 5.0 ms with an
# idle main thread: the JSON costs the writer ~2 us per task, without the GIL).
RUNNABLE_AS_ONE = (
    "SELECT json_group_array(json_array("
    + ", ".join(_as_json(column.strip()) for column in [*TASK_COLUMNS.split(","), "ready_at"])
    + ")) FROM ("
    + RUNNABLE.replace(f"SELECT {COLUMNS} FROM", f"SELECT {COLUMNS}, ready_at FROM", 1)
    + ")"
)


def _queue_order(row: list[Any]) -> tuple[float, int]:
    ready_at: float = row[-1]
    seq: int = row[0]
    return ready_at, seq


# Starts every claimed task in one statement. executemany of a per-row UPDATE ran the
# status-count trigger's program once per statement execution, which made a claim cost about
# 21 us per task of the writer's time; one statement over the claimed seqs (a JSON array, so
# the SQL text is the same for every claim size and no bound-variable limit applies) costs 10.
_START = (
    "UPDATE tasks SET status = 'Running', owner = ?, lease_until = ?, started_at = ?, "
    "finished_at = NULL, node = ?, paused_seconds = 0, paused_at = NULL "
    "WHERE seq IN (SELECT value FROM json_each(?))"
)


def targets_json(claim: Claim | None) -> str:
    """The targets a claimant serves, as RUNNABLE's JSON array parameter."""
    return json_text(list(claim.targets) if claim is not None else [])


def insert_params(
    task: TaskRecord, config_text: str | None = None, start: Claim | None = None
) -> tuple[Any, ...]:
    """The INSERT's values for ``task``; stored Running for ``start`` when given (see
    :class:`Placement`). ``config_text``: the config already encoded (submits encode it on the
    event loop, so a value that is not JSON fails its caller, not the writer's batch)."""
    queued_at = task.queued_at if task.queued_at is not None else task.created_at
    status, owner, lease_until, started_at, node = (
        task.status,
        task.owner,
        task.lease_until,
        task.started_at,
        task.node,
    )
    if start is not None:
        status, owner, lease_until, started_at, node = (
            Status.RUNNING,
            start.owner,
            start.lease_until,
            queued_at,
            start.node,
        )
    return (
        task.id,
        task.worker,
        status.value,
        json_text(task.config) if config_text is None else config_text,
        task.created_at,
        task.queued_at,
        started_at,
        task.finished_at,  # imports and seeds of finished history keep their age (retention)
        task.attempt,
        task.retries,
        task.timeout,
        owner,
        lease_until,
        task.run_after,
        task.chain_id,
        task.run_after if task.run_after is not None else queued_at,
        task.target,
        node,
    )


def started(task: TaskRecord, start: Claim | None) -> TaskRecord:
    """``task`` as stored once inserted with :func:`insert_params` (the caller's own record is
    updated: it waits for this answer and holds it alone, and a copy would cost the writer)."""
    if start is not None:
        task.status = Status.RUNNING
        task.owner = start.owner
        task.lease_until = start.lease_until
        task.started_at = task.queued_at if task.queued_at is not None else task.created_at
        task.node = start.node
    return task


# The tasks asked about, by id alone: with worker and status in the WHERE, SQLite would pick the
# queue's index and walk the whole queue to find a few ids.
QUEUE_FOUND = "SELECT seq, id, ready_at, worker, status FROM tasks WHERE id IN ({marks})"
# How many of the worker's Queued tasks lie in a stretch of the queue: (after, up to] in claim
# order. A range of tasks_queue that is counted without reading a row.
QUEUE_UP_TO = (
    "SELECT count(*) FROM tasks WHERE worker = ? AND status = 'Queued' "
    "AND (ready_at, seq) <= (?, ?)"
)
QUEUE_BETWEEN = QUEUE_UP_TO + " AND (ready_at, seq) > (?, ?)"


def queue_positions(
    conn: sqlite3.Connection, worker: str, task_ids: Sequence[str]
) -> dict[str, int]:
    """See ``Store.queue_positions``: the tasks asked about in claim order, each numbered by
    counting the stretch of the queue since the one before it, so the queue is read once up to
    the last of them (as a window would, but counting in the index is several times faster)."""
    if not task_ids:
        return {}
    rows = conn.execute(
        QUEUE_FOUND.format(marks=", ".join("?" * len(task_ids))), tuple(task_ids)
    ).fetchall()
    found = sorted(
        (ready_at, seq, task_id)
        for seq, task_id, ready_at, task_worker, status in rows
        if task_worker == worker and status == Status.QUEUED.value
    )
    positions: dict[str, int] = {}
    position = 0
    before: tuple[float, int] | None = None
    for ready_at, seq, task_id in found:
        if before is None:
            counted = conn.execute(QUEUE_UP_TO, (worker, ready_at, seq)).fetchone()[0]
        else:
            counted = conn.execute(QUEUE_BETWEEN, (worker, ready_at, seq, *before)).fetchone()[0]
        position += counted
        positions[task_id] = position
        before = (ready_at, seq)
    return positions


def held_count(conn: sqlite3.Connection, worker: str) -> int:
    """How many tasks hold a slot of ``worker`` (over every owner)."""
    count: int = conn.execute(
        f"SELECT count(*) FROM tasks WHERE worker = ? AND {HOLDS_SLOT}", (worker,)
    ).fetchone()[0]
    return count


def _runnable_waits(conn: sqlite3.Connection, worker: str, at: float, claim: Claim) -> bool:
    return conn.execute(RUNNABLE, (worker, at, targets_json(claim), 1)).fetchone() is not None


# A claiming submit's first look at its worker, in one statement: the slots held, and whether a
# runnable task its claim could take waits (a lone submit pays one read, not two).
_HELD_AND_WAITING = (
    f"SELECT (SELECT count(*) FROM tasks WHERE worker = ?1 AND {HOLDS_SLOT}), "
    f"EXISTS (SELECT 1 FROM tasks WHERE worker = ?1 AND {guard('claim')} "
    "AND (run_after IS NULL OR run_after <= ?2) "
    "AND (target IS NULL OR target IN (SELECT value FROM json_each(?3))))"
)


def _held_and_waiting(
    conn: sqlite3.Connection, worker: str, at: float, claim: Claim
) -> tuple[int, bool]:
    held, waits = conn.execute(_HELD_AND_WAITING, (worker, at, targets_json(claim))).fetchone()
    return held, bool(waits)


@dataclass(slots=True)
class _Lane:
    held: int
    # Whether the database holds runnable tasks the lane's claims may take (read at the first
    # claim: every claim of one server serves the same targets).
    stored_waits: bool | None
    # The targets of the runnable tasks placed Queued earlier in this transaction.
    placed: list[str | None]

    def waits_for(self, claim: Claim) -> bool:
        return bool(self.stored_waits) or any(claim.accepts(t) for t in self.placed)


class Placement:
    """Places new tasks of one transaction, in submit order: a task submitted with a claim is
    stored Running when its worker has a free slot and no runnable task that the claim could
    take waits ahead of it, Queued otherwise. Reads each worker's slots and queue once, then
    keeps count as it places (the writer is the only one, so the counts cannot go stale inside
    its transaction)."""

    def __init__(self, conn: sqlite3.Connection, claims: bool) -> None:
        """``claims``: whether any task of the transaction comes with a claim (if none does,
        every task is stored as given and nothing needs counting)."""
        self._conn = conn
        self._claims = claims
        self._lanes: dict[str, _Lane] = {}
        # Tasks started so far per claim (by identity), for claims with a ``count``.
        self._started: dict[int, int] = {}

    def place(self, task: TaskRecord, claim: Claim | None) -> Claim | None:
        """The claim that starts ``task`` at once, or None: it is stored as given. Counted as
        inserted (see :meth:`undo`)."""
        if not self._claims:
            return None
        at = task.queued_at if task.queued_at is not None else task.created_at
        lane = self._lanes.get(task.worker)
        if lane is None and claim is not None:
            held, waits = _held_and_waiting(self._conn, task.worker, at, claim)
            lane = self._lanes[task.worker] = _Lane(held, waits, [])
        elif lane is None:
            lane = self._lanes[task.worker] = _Lane(held_count(self._conn, task.worker), None, [])
        if claim is not None and lane.stored_waits is None:
            lane.stored_waits = _runnable_waits(self._conn, task.worker, at, claim)
        runnable = task.status is Status.QUEUED and (task.run_after is None or task.run_after <= at)
        if (
            claim is not None
            and claim.accepts(task.target)
            and runnable
            and lane.held < claim.limit
            and not lane.waits_for(claim)
            and (claim.count is None or self._started.get(id(claim), 0) < claim.count)
        ):
            lane.held += 1
            self._started[id(claim)] = self._started.get(id(claim), 0) + 1
            return claim
        if runnable:
            lane.placed.append(task.target)
        return None

    def undo(self, task: TaskRecord, start: Claim | None) -> None:
        """``task``, placed with ``start``, was refused by the database after all."""
        lane = self._lanes.get(task.worker)
        if lane is None:
            return
        if start is not None:
            lane.held -= 1
            self._started[id(start)] -= 1
        elif task.status is Status.QUEUED and task.target in lane.placed:
            lane.placed.remove(task.target)


# New rows join their (worker, status) count here, one upsert per group of an insert statement:
# an AFTER INSERT trigger (earlier versions) ran one upsert per row, about 4 us of the writer's
# 13-16 us per row of a 1,000-row insert. Every INSERT INTO tasks goes through
# :func:`insert_rows` or :func:`insert_one`, which count in the same transaction as they
# insert (an insert that fails counts nothing: it raises before its count runs).
_COUNT_NEW = (
    "INSERT INTO status_counts (worker, status, n) VALUES (?, ?, ?) "
    "ON CONFLICT (worker, status) DO UPDATE SET n = n + excluded.n"
)


_INSERT_VALUES = INSERT.count("?")


def _rows_per_insert(most: int = 512) -> int:
    """The most rows an INSERT statement of insert_rows carries: a power of two, up to ``most``,
    whose bound values the SQLite library allows (999 per statement before 3.32, 32,766 since:
    32 or 512 rows of 18 values)."""
    with contextlib.closing(sqlite3.connect(":memory:")) as probe:
        allowed = probe.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    rows = 1
    while rows * 2 <= most and rows * 2 * _INSERT_VALUES <= allowed:
        rows *= 2
    return rows


ROWS_PER_INSERT = _rows_per_insert()
# Statements of insert_rows: up to SMALL_INSERT rows in one statement of that many rows, more in
# statements of a power of two rows (up to ROWS_PER_INSERT) and one for what is left: a
# 1,000-task batch goes in 6 statements (512 + 256 + 128 + 64 + 32 + 8) instead of 32 of 32
# rows, and at most SMALL_INSERT + 4 statement texts are ever prepared (the writer's statement
# cache keeps them). Each statement counts: the sqlite3 module lets go of the GIL for every
# step, and while the event loop runs the tasks of the previous chunk the writer waits to take
# it back (see RUNNABLE_AS_ONE). In the batch driver (50,000 no-op tasks in chunks of 1,000)
# the batches' inserts took the writer 2.4 s instead of 3.2 s.
SMALL_INSERT = min(32, ROWS_PER_INSERT)
INSERT_SIZES = (
    *range(1, SMALL_INSERT + 1),
    *(1 << bit for bit in range(SMALL_INSERT.bit_length(), ROWS_PER_INSERT.bit_length())),
)


def _statement_sizes(rows: int) -> list[int]:
    sizes = []
    while rows > SMALL_INSERT:
        size = min(ROWS_PER_INSERT, 1 << (rows.bit_length() - 1))
        sizes.append(size)
        rows -= size
    if rows:
        sizes.append(rows)
    return sizes


@functools.cache
def _insert_many(rows: int) -> str:
    """INSERT with ``rows`` rows of values (the sqlite3 module caches each text's statement)."""
    return INSERT + (", (" + ", ".join("?" * _INSERT_VALUES) + ")") * (rows - 1)


def insert_rows(conn: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> int:
    """Insert :func:`insert_params` rows and count them in ``status_counts`` (long configs go
    to task_configs, see CONFIG_ASIDE); returns the last row's rowid.

    Statements of INSERT_SIZES rows, not executemany: the sqlite3 module releases the
    GIL around every step and the writer then waits to take it back from the event loop's thread,
    once per row with executemany (a group commit of 20 submits spent ~0.5 ms in its insert, of
    ~0.25 ms of work). A multi-row statement keeps a statement journal (it may fail half-way):
    the writer's connection keeps it in memory (temp_store, see sqlite.connect_writer)."""
    aside = [(index, row[3]) for index, row in enumerate(rows) if kept_aside(row[3])]
    if aside:
        rows = list(rows)
        for index, _ in aside:
            rows[index] = _without_config(rows[index])
    last = 0
    start = 0
    for size in _statement_sizes(len(rows)):
        chunk = rows[start : start + size]
        last = conn.execute(_insert_many(size), [v for row in chunk for v in row]).lastrowid or 0
        start += size
    groups = Counter((row[1], row[2]) for row in rows)
    if len(groups) == 1:
        [((worker, status), n)] = groups.items()
        conn.execute(_COUNT_NEW, (worker, status, n))
    else:
        conn.executemany(_COUNT_NEW, [(w, status, n) for (w, status), n in groups.items()])
    if aside:  # the rowids of one transaction's inserts are consecutive (see insert_placed)
        first = last - len(rows) + 1
        conn.executemany(_SET_ASIDE, [(first + index, text) for index, text in aside])
    return last


def _without_config(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """An :func:`insert_params` row whose config is kept in task_configs (see CONFIG_ASIDE)."""
    return (*row[:3], "", *row[4:])


def insert_placed(
    conn: sqlite3.Connection,
    tasks: Sequence[TaskRecord],
    configs: Sequence[str | None],
    starts: Sequence[Claim | None],
) -> list[TaskRecord]:
    """Insert rows in one statement; returns the tasks as stored, each with its ``seq``. Rowids
    of one multi-row insert are consecutive (each new row takes the largest rowid + 1), so the
    last one tells them all."""
    if len(tasks) == 1:  # a lone submit: its rowid comes with the insert, no second statement
        [one] = tasks
        return [insert_one(conn, one, configs[0], starts[0])]
    rows = [insert_params(*row) for row in zip(tasks, configs, starts, strict=True)]
    first = insert_rows(conn, rows) - len(tasks) + 1
    stored = [started(task, start) for task, start in zip(tasks, starts, strict=True)]
    for offset, task in enumerate(stored):
        task.seq = first + offset
    return stored


def insert_one(
    conn: sqlite3.Connection, task: TaskRecord, config_text: str | None, start: Claim | None
) -> TaskRecord:
    params = insert_params(task, config_text, start)
    text: str = params[3]
    aside = kept_aside(text)
    seq = conn.execute(INSERT, _without_config(params) if aside else params).lastrowid or 0
    conn.execute(_COUNT_NEW, (params[1], params[2], 1))
    if aside:
        conn.execute(_SET_ASIDE, (seq, text))
    stored = started(task, start)
    stored.seq = seq
    return stored


def claim_rows(conn: sqlite3.Connection, worker: str, wanted: Claim, at: float) -> list[list[Any]]:
    """Start the oldest runnable tasks of ``worker`` that fit in its free slots; returns their
    rows as they were before (:func:`claimed_tasks` makes the records, on the event loop: the
    writer thread is the busier one when tasks end as fast as they start)."""
    free = wanted.limit - held_count(conn, worker)
    if wanted.count is not None:
        free = min(free, wanted.count)
    if free <= 0:
        return []
    params = (worker, at, targets_json(wanted), free)
    rows: list[list[Any]] = orjson.loads(conn.execute(RUNNABLE_AS_ONE, params).fetchone()[0])
    if not rows:
        return []
    # In queue order: the aggregate reads its subquery in order, but SQLite does not promise it.
    rows.sort(key=_queue_order)
    conn.execute(
        _START,
        (wanted.owner, wanted.lease_until, at, wanted.node, json_text([row[0] for row in rows])),
    )
    return rows


def claimed_tasks(rows: Sequence[Sequence[Any]], wanted: Claim, at: float) -> list[TaskRecord]:
    """The records of rows :func:`claim_rows` claimed, as they are now."""
    claimed = [row_to_task(row) for row in rows]
    for task in claimed:
        task.status = Status.RUNNING
        task.owner = wanted.owner
        task.lease_until = wanted.lease_until
        task.started_at = at
        task.finished_at = None
        task.node = wanted.node
    return claimed
