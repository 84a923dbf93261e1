"""The tasks table of the PostgreSQL store: rows, inserts and claims, with the slot rows that
make a worker's limit hold across every node.

A task holds a slot of its worker from its claim until it ends (Running, or Paused after it
started; only such a task has an owner). Each held task occupies one row of ``worker_slots``;
rows ``1..limit`` are the room a claim may use. A claim locks free rows with ``FOR UPDATE SKIP
LOCKED``: two claims in flight lock disjoint rows, so together they cannot take more room than
there is, whatever each one's snapshot says. Occupied rows above the limit (a limit lowered
while its tasks ran, rows imported as running) count against it: a claim locks that many more
free rows than it uses. Queue order is ``(ready_at, seq)`` per worker, as in the SQLite store.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from tasky.states import MOVES, STATUS_OF, Status
from tasky.store.base import DuplicateId
from tasky.store.pg_database import Conn, Row
from tasky.store.records import Claim, TaskRecord
from tasky.store.sql_rows import TASK_COLUMNS
from tasky.store.sql_rows import row_to_task as row_to_task  # importers take it from here

COLUMNS = TASK_COLUMNS  # the same in both SQL stores (tasky.store.sql_rows)
INSERTED = (
    "id, worker, status, config, created_at, queued_at, started_at, finished_at, attempt, "
    "retries, timeout, owner, lease_until, run_after, chain_id, ready_at, target, node"
)
# The parameter names of _SUBMIT_CLAIMED for the values of insert_params.
_INSERT_NAMES = (
    "id",
    "worker",
    "status",
    "config",
    "created_at",
    "queued_at",
    "started_at",
    "finished_at",
    "attempt",
    "retries",
    "timeout",
    "task_owner",
    "task_lease",
    "run_after",
    "chain_id",
    "ready_at",
    "target",
    "task_node",
)
INSERT = f"INSERT INTO tasks ({INSERTED}) VALUES ({', '.join(['%s'] * 18)})"

HOLDS_SLOT = "owner IS NOT NULL AND status IN ('Running', 'Paused')"
_WAITS = "status <> 'Running' AND owner IS NULL"


def guard(move: str, held: bool | None = None) -> str:
    """The SQL condition a task must meet for the store operation ``move``: a status among the
    sources ``tasky.states.MOVES`` names, holding a slot or not as the move (or, where it allows
    both, ``held``) says. Status names are literals, never user input."""
    spec = MOVES[move]
    statuses = ", ".join(f"'{status.value}'" for status in sorted(spec.sources))
    condition = f"status IN ({statuses})"
    holds = spec.held if spec.held is not None else held
    if holds is True:
        condition += " AND (status = 'Running' OR owner IS NOT NULL)"
    elif holds is False:
        condition += f" AND {_WAITS}"
    return condition


def insert_params(task: TaskRecord, config_text: str) -> tuple[Any, ...]:
    """The values of :data:`INSERT` for ``task`` (its config already encoded)."""
    queued_at = task.queued_at if task.queued_at is not None else task.created_at
    return (
        task.id,
        task.worker,
        task.status.value,
        config_text,
        task.created_at,
        task.queued_at,
        task.started_at,
        task.finished_at,
        task.attempt,
        task.retries,
        task.timeout,
        task.owner,
        task.lease_until,
        task.run_after,
        task.chain_id,
        task.run_after if task.run_after is not None else queued_at,
        task.target,
        task.node,
    )


# What an insert returns: what a claim may have changed of the task as given.
_STORED = "seq, status, started_at, owner, lease_until, node"
# A task the claimant may take: untargeted, or targeting one of the claim's targets. A task that
# waits for another node is stepped over: it takes no slot row and blocks nobody here.
_RUNNABLE = (
    f"worker = %(worker)s AND {guard('claim')} AND (run_after IS NULL OR run_after <= %(at)s) "
    "AND (target IS NULL OR target = ANY(%(targets)s))"
)


def _usable_slots(want: str) -> str:
    """CTEs ending in ``usable``: the free slot rows a claim of ``want`` (an SQL expression) tasks
    may use, locked. As many are locked as wanted plus as many as are occupied above the limit,
    and only those beyond the occupied ones are usable. Rows locked by another claim are skipped
    (that claim uses them); a row taken or freed by a transaction that committed after this
    statement's snapshot is re-checked as it is locked."""
    return f"""
over AS (
    SELECT count(*) AS n FROM worker_slots
    WHERE worker = %(worker)s AND slot_no > %(limit)s AND task_id IS NOT NULL
), locked AS (
    SELECT slot_no FROM worker_slots
    WHERE worker = %(worker)s AND slot_no <= %(limit)s AND task_id IS NULL
    ORDER BY slot_no LIMIT CASE WHEN {want} > 0 THEN {want} + (SELECT n FROM over) ELSE 0 END
    FOR UPDATE SKIP LOCKED
), numbered AS (
    SELECT slot_no, row_number() OVER (ORDER BY slot_no) AS n FROM locked
), usable AS (
    SELECT slot_no, n FROM numbered
    WHERE n <= (SELECT count(*) FROM numbered) - (SELECT n FROM over)
)"""


# The oldest runnable Queued tasks, as many as there are usable slots, paired with the slots.
# Slots are locked only for the tasks there are (``waiting``: a count that stops at the number
# wanted), so a large limit costs nothing. SKIP LOCKED: a task another claim is starting is
# that claim's. The "= ANY(ARRAY(...))" conditions let the planner reach the rows it updates
# through their primary key: it cannot know how few rows a CTE holds, and with a large table
# might otherwise scan it whole.
_CLAIM = f"""
WITH waiting AS (
    SELECT count(*) AS n FROM (
        SELECT 1 FROM tasks WHERE {_RUNNABLE} ORDER BY ready_at, seq LIMIT %(want)s
    ) w
), {_usable_slots("(SELECT n FROM waiting)")}, picked AS (
    SELECT seq, row_number() OVER (ORDER BY ready_at, seq) AS n FROM (
        SELECT seq, ready_at FROM tasks WHERE {_RUNNABLE}
        ORDER BY ready_at, seq LIMIT (SELECT count(*) FROM usable)
        FOR UPDATE SKIP LOCKED
    ) oldest
), started AS (
    UPDATE tasks t SET status = 'Running', owner = %(owner)s, lease_until = %(lease_until)s,
        started_at = %(at)s, finished_at = NULL, node = %(node)s, paused_seconds = 0,
        paused_at = NULL
    FROM picked WHERE t.seq = picked.seq AND t.seq = ANY(ARRAY(SELECT seq FROM picked))
    RETURNING picked.n, {", ".join("t." + c.strip() for c in COLUMNS.split(","))}
), taken AS (
    UPDATE worker_slots w SET task_id = started.id
    FROM started JOIN usable USING (n)
    WHERE w.worker = %(worker)s AND w.slot_no = usable.slot_no
    AND w.slot_no = ANY(ARRAY(SELECT slot_no FROM usable))
)
SELECT {COLUMNS} FROM started ORDER BY n
"""

# A new task that a claim may start at once: it takes a usable slot when no runnable task of its
# worker waits ahead of it, and is inserted Running (owned, started at its queue time) with it,
# Queued without.
_SUBMIT_CLAIMED = f"""
WITH {_usable_slots("1")}, slot AS (
    SELECT slot_no FROM usable
    WHERE NOT EXISTS (SELECT 1 FROM tasks WHERE {_RUNNABLE})
    ORDER BY slot_no LIMIT 1
), inserted AS (
    INSERT INTO tasks ({INSERTED})
    SELECT %(id)s, %(worker)s, CASE WHEN slot.slot_no IS NULL THEN 'Queued' ELSE 'Running' END,
        %(config)s, %(created_at)s, %(queued_at)s,
        CASE WHEN slot.slot_no IS NULL THEN %(started_at)s ELSE %(at)s END, %(finished_at)s,
        %(attempt)s, %(retries)s, %(timeout)s,
        CASE WHEN slot.slot_no IS NULL THEN %(task_owner)s ELSE %(owner)s END,
        CASE WHEN slot.slot_no IS NULL THEN %(task_lease)s ELSE %(lease_until)s END,
        %(run_after)s, %(chain_id)s, %(ready_at)s, %(target)s,
        CASE WHEN slot.slot_no IS NULL THEN %(task_node)s ELSE %(node)s END
    FROM (SELECT (SELECT slot_no FROM slot) AS slot_no) slot
    ON CONFLICT (id) DO NOTHING
    RETURNING {_STORED}
), taken AS (
    UPDATE worker_slots w SET task_id = %(id)s
    FROM slot WHERE w.worker = %(worker)s AND w.slot_no = slot.slot_no
    AND EXISTS (SELECT 1 FROM inserted)
)
SELECT {_STORED} FROM inserted
"""

_ENSURE_SLOTS = (
    "INSERT INTO worker_slots (worker, slot_no) SELECT %s, g FROM generate_series(1, %s) g "
    "ON CONFLICT DO NOTHING"
)


# Where the tasks asked about stand in the worker's queue: each one's stretch of the queue since
# the one before it (in claim order) is counted in the partial index tasks_ready, and the counts
# are added up, so the queue is read once up to the last of them, index entries only (a window
# numbering the whole stretch costs several times more).
_QUEUE_POSITIONS = """
WITH asked AS (
    SELECT id, ready_at, seq,
        coalesce(lag(ready_at) OVER queue, '-infinity') AS after_ready,
        coalesce(lag(seq) OVER queue, 0) AS after_seq
    FROM tasks WHERE id = ANY(%(ids)s) AND worker = %(worker)s AND status = 'Queued'
    WINDOW queue AS (ORDER BY ready_at, seq)
)
SELECT a.id, sum(stretch.n) OVER (ORDER BY a.ready_at, a.seq)
FROM asked a CROSS JOIN LATERAL (
    SELECT count(*) AS n FROM tasks t
    WHERE t.worker = %(worker)s AND t.status = 'Queued'
    AND (t.ready_at, t.seq) <= (a.ready_at, a.seq)
    AND (t.ready_at, t.seq) > (a.after_ready, a.after_seq)
) stretch
"""


async def queue_positions(conn: Conn, worker: str, task_ids: Sequence[str]) -> dict[str, int]:
    """See ``Store.queue_positions`` (one statement: see :data:`_QUEUE_POSITIONS`)."""
    if not task_ids:
        return {}
    params = {"ids": list(task_ids), "worker": worker}
    rows = await (await conn.execute(_QUEUE_POSITIONS, params)).fetchall()
    return {task_id: int(position) for task_id, position in rows}


async def ensure_slots(conn: Conn, worker: str, limit: int) -> None:
    """Create slot rows ``1..limit`` of ``worker`` that do not exist yet (never removed: a lower
    limit leaves the rows above it unused)."""
    await conn.execute(_ENSURE_SLOTS, (worker, limit))


async def claim(conn: Conn, worker: str, wanted: Claim, at: float) -> list[TaskRecord]:
    """Start the oldest runnable tasks of ``worker`` that fit in its free slots (one statement:
    its own transaction on an autocommit connection, or part of the caller's)."""
    want = wanted.limit if wanted.count is None else min(wanted.count, wanted.limit)
    if want <= 0:
        return []
    cursor = await conn.execute(
        _CLAIM,
        {
            "worker": worker,
            "limit": wanted.limit,
            "want": want,
            "at": at,
            "owner": wanted.owner,
            "lease_until": wanted.lease_until,
            "node": wanted.node,
            "targets": list(wanted.targets),
        },
    )
    return [row_to_task(row) for row in await cursor.fetchall()]


def insert_statement(
    task: TaskRecord, config_text: str, wanted: Claim | None
) -> tuple[str, Sequence[Any] | dict[str, Any]]:
    """The statement that inserts one task: as given, or Running at once when ``wanted``
    allows (see :meth:`tasky.store.base.Store.submit`). Its row goes to :func:`stored`.

    A taken id inserts nothing and returns no row rather than failing the statement: in a
    pipeline of several submits an error would abort them all."""
    queued_at = task.queued_at if task.queued_at is not None else task.created_at
    values = insert_params(task, config_text)
    if wanted is None or not startable(task) or not wanted.accepts(task.target):
        return f"{INSERT} ON CONFLICT (id) DO NOTHING RETURNING {_STORED}", values
    params: dict[str, Any] = dict(zip(_INSERT_NAMES, values, strict=True))
    params.update(
        limit=wanted.limit,
        at=queued_at,
        owner=wanted.owner,
        lease_until=wanted.lease_until,
        node=wanted.node,
        targets=list(wanted.targets),
    )
    return _SUBMIT_CLAIMED, params


def startable(task: TaskRecord) -> bool:
    """A claim may start ``task`` as it is inserted: it is Queued and runnable at its queue
    time."""
    queued_at = task.queued_at if task.queued_at is not None else task.created_at
    return task.status is Status.QUEUED and (task.run_after is None or task.run_after <= queued_at)


def stored(task: TaskRecord, row: Row | None) -> TaskRecord:
    """``task`` as its :func:`insert_statement` stored it (``row``: what that returned; none
    when the id was taken: DuplicateId)."""
    if row is None:
        raise DuplicateId(f"task id {task.id} is taken")
    seq, status, started_at, owner, lease_until, node = row
    return dataclasses.replace(
        task,
        seq=seq,
        status=STATUS_OF[status],
        started_at=started_at,
        owner=owner,
        lease_until=lease_until,
        node=node,
    )


async def insert(
    conn: Conn, task: TaskRecord, config_text: str, wanted: Claim | None
) -> TaskRecord:
    """Insert one task (see :func:`insert_statement`); returns it as stored."""
    cursor = await conn.execute(*insert_statement(task, config_text, wanted))
    return stored(task, await cursor.fetchone())


async def insert_all(
    conn: Conn, tasks: Sequence[TaskRecord], configs: Sequence[str], wanted: Claim | None
) -> list[TaskRecord]:
    """Insert ``tasks`` in order, in the caller's transaction; with ``wanted``, each may start
    at once as in :func:`insert`, at most ``wanted.count`` of them in all.

    While the claim may still start one, statements go one at a time (each depends on what the
    previous one did); the rest are pipelined, as given. A task that stayed Queued although
    runnable and the claim's to take makes the later ones of its worker wait behind it, so they
    are not tried.
    """
    done: list[TaskRecord] = []
    if wanted is not None:
        started = 0
        blocked: set[str] = set()
        workers_from = _workers_from(tasks)
        while len(done) < len(tasks):
            if wanted.count is not None and started >= wanted.count:
                break
            if workers_from[len(done)] <= blocked:
                break
            task = tasks[len(done)]
            claim = None if task.worker in blocked else wanted
            row = await insert(conn, task, configs[len(done)], claim)
            if claim is not None and startable(task) and claim.accepts(task.target):
                if row.status is Status.RUNNING:
                    started += 1
                else:
                    blocked.add(task.worker)
            done.append(row)
    rest = list(zip(tasks[len(done) :], configs[len(done) :], strict=True))
    if rest:
        # A refused statement raises as the pipeline closes.
        async with conn.pipeline():
            cursors = [await conn.execute(*insert_statement(t, c, None)) for t, c in rest]
        done += [
            stored(t, await cursor.fetchone()) for (t, _), cursor in zip(rest, cursors, strict=True)
        ]
    return done


def _workers_from(tasks: Sequence[TaskRecord]) -> list[set[str]]:
    """For each index, the workers of the tasks from there on."""
    suffixes: list[set[str]] = []
    seen: set[str] = set()
    for task in reversed(tasks):
        seen = seen | {task.worker}
        suffixes.append(seen)
    return suffixes[::-1]
