"""The SQLite store's status-moving operations, each a compare-and-set run by the writer.

Every operation finds its task with the guard of its entry in ``tasky.states.MOVES`` (plus the
owner and attempt for work a node holds) and changes nothing when the task does not match. An
operation that ends an attempt records it (history, timing statistics) in the same transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from tasky.states import MOVES, Status
from tasky.store.records import Outcome, pause_ends
from tasky.store.sqlite_tasks import HOLDS_SLOT, exact_json, guard, json_text, kept_aside
from tasky.store.sqlite_totals import AttemptTotals, WriterConnection

Move = Callable[[sqlite3.Connection], bool]

# What a task that joins the queue again (retry, crash, re-run) starts from: a new attempt with
# nothing left of the previous one but its error (for a retry or a crash).
_REQUEUE = (
    "status = 'Queued', attempt = attempt + 1, queued_at = ?, ready_at = ?, run_after = ?, "
    "started_at = NULL, finished_at = NULL, owner = NULL, lease_until = NULL, progress = NULL, "
    "progress_message = NULL, result = NULL, error = ?, paused_seconds = 0, paused_at = NULL"
)
# A task that has not started (Queued, or Paused before it started): its config may change.
_NOT_STARTED = "status IN ('Queued', 'Paused') AND status <> 'Running' AND owner IS NULL"


# What an ending attempt's record is made of (see _record_attempt).
_BEFORE = "seq, worker, attempt, queued_at, started_at, node, paused_seconds, paused_at"
# Per move of a held attempt: the row its compare-and-set accepts (see _held).
_HELD = {
    move: f"SELECT {_BEFORE} FROM tasks "
    f"WHERE id = ? AND {guard(move)} AND owner IS ? AND attempt = ?"
    for move in ("finish", "retry_later", "requeue_interrupted", "fail_interrupted")
}


def _held(
    conn: sqlite3.Connection, move: str, task_id: str, owner: str | None, attempt: int
) -> tuple[Any, ...] | None:
    """The :data:`_BEFORE` columns of the task if ``owner`` holds it at
    ``attempt`` in a status ``move`` may start from; None otherwise."""
    row: tuple[Any, ...] | None = conn.execute(_HELD[move], (task_id, owner, attempt)).fetchone()
    return row


def _paused(before: tuple[Any, ...], at: float) -> float:
    """The attempt's paused time once it ends at ``at`` (``before``: its :data:`_BEFORE`)."""
    return pause_ends(before[7], before[6], at)


_FINISH = (
    "UPDATE tasks SET status = ?, finished_at = ?, error = ?, result = ?, "
    "progress = CASE WHEN ? THEN 1.0 ELSE coalesce(?, progress) END, "
    "progress_message = coalesce(?, progress_message), owner = NULL, "
    "lease_until = NULL, paused_seconds = ?, paused_at = NULL WHERE seq = ?"
)
_ATTEMPT = (
    "INSERT OR REPLACE INTO task_attempts (task_id, attempt, status, started_at, "
    "finished_at, error, result, traceback, node, paused_seconds) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


# A finished task's final attempt as the task row tells it, when no task_attempts row holds it
# (see Finish.keeps_attempt_row): the columns of AttemptRecord, in order; ?1: the task id.
FINAL_ATTEMPT = (
    "SELECT t.attempt, t.status, t.started_at, t.finished_at, t.error, t.result, NULL, t.node, "
    f"t.paused_seconds FROM tasks AS t WHERE t.id = ?1 AND {guard('rerun')} "
    "AND t.started_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM task_attempts AS a "
    "WHERE a.task_id = t.id AND a.attempt = t.attempt)"
)
_KEEP_FINAL_ATTEMPT = (
    "INSERT INTO task_attempts (task_id, attempt, status, started_at, finished_at, error, "
    "result, traceback, node, paused_seconds) "
    f"SELECT ?1, * FROM ({FINAL_ATTEMPT})"
)


def _item(index: int, of: str = "j.value") -> str:
    """Element ``index`` of a JSON array, as an SQL value. (json_extract rather than ``->>``:
    that needs SQLite 3.38, json_extract any SQLite with JSON.)"""
    return f"json_extract({of}, '$[{index}]')"


# The held rows of many finishes at once: (task id, owner, attempt) as a JSON array of arrays;
# each row comes with its index in that array. (json_each has an ``id`` column: t.id.) CROSS
# JOIN keeps json_each outside, each task found by its id: with a plain JOIN SQLite walked the
# index of every Running task instead.
# They come as one JSON array of arrays, so that the writer steps one row, not one per task
# (see tasky.store.sqlite_tasks.RUNNABLE_AS_ONE), REAL columns exact (exact_json).
_HELD_MANY = (
    "SELECT json_group_array(json_array(j.key, t.seq, t.worker, t.attempt, "
    f"{exact_json('t.queued_at')}, {exact_json('t.started_at')}, t.node, "
    f"{exact_json('t.paused_seconds')}, {exact_json('t.paused_at')})) "
    "FROM json_each(?) AS j CROSS JOIN tasks AS t "
    f"ON t.id = {_item(0)} "
    f"WHERE {guard('finish')} AND t.owner IS {_item(1)} AND t.attempt = {_item(2)}"
)
# _FINISH and _ATTEMPT for many rows (UPDATE ... FROM: SQLite 3.33), each row's parameters
# in their order as a JSON array.
_FINISH_MANY = (
    f"UPDATE tasks SET status = {_item(0)}, finished_at = {_item(1)}, error = {_item(2)}, "
    f"result = {_item(3)}, "
    f"progress = CASE WHEN {_item(4)} THEN 1.0 ELSE coalesce({_item(5)}, progress) END, "
    f"progress_message = coalesce({_item(6)}, progress_message), owner = NULL, "
    f"lease_until = NULL, paused_seconds = {_item(7)}, paused_at = NULL "
    f"FROM json_each(?) AS j WHERE tasks.seq = {_item(8)}"
)
# _FINISH_MANY for ends that differ only in their time (and task): what the rest of the row
# gets is bound once (?2-?8, in _update's order) and the JSON rows carry [finished_at, seq].
# The ends of a group of no-op tasks, or of any tasks that return nothing, are alike: the
# writer extracts 2 values a row instead of 9. Standalone (1,000 ends on a copy of a
# 50,000-task store, thread CPU, median of 8): 17.4-18.5 us an end against 22.1-24.3; in the
# batch driver the writer thread's CPU per task went from 75-80 to 72-76 us (three alternated
# pairs of new servers, on a slow stretch of the machine).
_FINISH_ALIKE = (
    f"UPDATE tasks SET status = ?2, finished_at = {_item(0)}, error = ?3, result = ?4, "
    "progress = CASE WHEN ?5 THEN 1.0 ELSE coalesce(?6, progress) END, "
    "progress_message = coalesce(?7, progress_message), owner = NULL, "
    "lease_until = NULL, paused_seconds = ?8, paused_at = NULL "
    f"FROM json_each(?1) AS j WHERE tasks.seq = {_item(1)}"
)
_ATTEMPT_MANY = (
    "INSERT OR REPLACE INTO task_attempts (task_id, attempt, status, started_at, "
    "finished_at, error, result, traceback, node, paused_seconds) "
    f"SELECT {', '.join(_item(i, 'value') for i in range(10))} FROM json_each(?)"
)


class Finish:
    """A held attempt's end (the ``finish`` move). Run alone by calling it; consecutive
    finishes of one group commit run together with :func:`finish_many`."""

    __slots__ = ("attempt", "outcome", "owner", "result", "task_id")

    def __init__(self, task_id: str, owner: str, attempt: int, outcome: Outcome) -> None:
        if outcome.status not in MOVES["finish"].targets:
            raise ValueError(f"an attempt cannot end as {outcome.status}")
        completed = outcome.status is Status.COMPLETED
        self.task_id = task_id
        self.owner = owner
        self.attempt = attempt
        self.outcome = outcome
        self.result = (
            json_text(outcome.result) if completed and outcome.result is not None else None
        )

    def __call__(self, conn: sqlite3.Connection) -> bool:
        row = _held(conn, "finish", self.task_id, self.owner, self.attempt)
        if row is None:
            return False
        conn.execute(_FINISH, self._update(row))
        if self.keeps_attempt_row:
            conn.execute(_ATTEMPT, self._attempt(row))
        self._add_totals(conn, row)
        return True

    @property
    def keeps_attempt_row(self) -> bool:
        """Whether this end needs its own task_attempts row. The task's row holds everything
        about its final attempt but a traceback, so that attempt is read from there (see
        FINAL_ATTEMPT) until a re-run moves it into task_attempts (see :func:`rerun`). An end
        without one then writes one row, not two: task_attempts is keyed by the random task id,
        so its row cost a B-tree page of its own per ended task (in the batch driver about 0.8 of
        the ~1.4 pages each task wrote to the WAL, on a store of 170,000 tasks)."""
        return self.outcome.traceback is not None

    def _update(self, row: tuple[Any, ...]) -> tuple[Any, ...]:
        outcome = self.outcome
        return (
            outcome.status.value,
            outcome.at,
            outcome.error,
            self.result,
            outcome.status is Status.COMPLETED,
            outcome.progress,
            outcome.progress_message,
            _paused(row, outcome.at),
            row[0],
        )

    def _attempt(self, row: tuple[Any, ...]) -> tuple[Any, ...]:
        _, _, attempt, _, started_at, node, _, _ = row
        outcome = self.outcome
        return (
            self.task_id,
            attempt,
            outcome.status.value,
            started_at,
            outcome.at,
            outcome.error,
            self.result,
            outcome.traceback,
            node if started_at is not None else None,
            _paused(row, outcome.at),
        )

    def _add_totals(self, conn: sqlite3.Connection, row: tuple[Any, ...]) -> None:
        started_at = row[4]
        if started_at is None:
            return
        totals = conn.totals if isinstance(conn, WriterConnection) else AttemptTotals()
        at = self.outcome.at
        totals.add(row[1], started_at, row[3], at, _paused(row, at), self.outcome.status.value)
        if not isinstance(conn, WriterConnection):
            totals.flush(conn)


def finish(task_id: str, owner: str, attempt: int, outcome: Outcome) -> Finish:
    return Finish(task_id, owner, attempt, outcome)


class Finishes:
    """Several finishes as one operation (``Store.finish_many``): one caller, one answer (a
    list), all or none. The writer runs them with the finishes around them (see
    ``sqlite._run_ops``); run alone by calling it, one after another."""

    __slots__ = ("finishes",)

    def __init__(self, finishes: list[Finish]) -> None:
        self.finishes = finishes

    def __call__(self, conn: sqlite3.Connection) -> list[bool]:
        return [one(conn) for one in self.finishes]


def finish_many(conn: sqlite3.Connection, finishes: Sequence[Finish]) -> list[bool]:
    """Run ``finishes`` (of distinct tasks) as if one after another, each its own
    compare-and-set: one SELECT of the rows they hold, then one UPDATE and one INSERT of the
    attempt rows for all that matched, their values as a JSON array (json_each).

    One statement instead of one per row is what counts: the sqlite3 module releases and takes
    back the GIL around every step, and the writer waited for the event loop's thread at each
    (executemany: once per row). In the batch driver (50,000 no-ops in chunks of 1,000) the
    writer thread's CPU per task went from 55-59 to 45-49 us; executemany saved only ~2 us.
    Floats pass through JSON text: Python writes the shortest repr that round-trips, and
    SQLite reads it back to the same double (checked in tests/test_sqlite_finish_many.py)."""
    keys = json_text([[f.task_id, f.owner, f.attempt] for f in finishes])
    found: list[list[Any]] = orjson.loads(conn.execute(_HELD_MANY, (keys,)).fetchone()[0])
    held: dict[int, tuple[Any, ...]] = {row[0]: tuple(row[1:]) for row in found}
    updates = []
    attempts = []
    done = [False] * len(finishes)
    for index, row in sorted(held.items()):
        one = finishes[index]
        updates.append(one._update(row))
        if one.keeps_attempt_row:
            attempts.append(one._attempt(row))
        one._add_totals(conn, row)
        done[index] = True
    if updates:
        alike = _alike(updates)
        if alike is not None:
            conn.execute(_FINISH_ALIKE, (json_text([[u[1], u[8]] for u in updates]), *alike))
        else:
            conn.execute(_FINISH_MANY, (json_text(updates),))
    if attempts:
        conn.execute(_ATTEMPT_MANY, (json_text(attempts),))
    return done


def _alike(updates: Sequence[tuple[Any, ...]]) -> tuple[Any, ...] | None:
    """What every row of ``updates`` (:meth:`Finish._update`'s tuples) sets but its time and
    task, if it is the same for all of them."""
    first = updates[0]
    shared = (first[0], *first[2:8])
    for update in updates:
        if update[0] != shared[0] or update[2:8] != shared[1:]:
            return None
    return shared


def requeue(
    move: str,
    task_id: str,
    owner: str | None,
    attempt: int,
    error: str,
    at: float,
    run_after: float | None = None,
    traceback: str | None = None,
) -> Move:
    """A held attempt failed (``retry_later``) or stopped with its node (``requeue_interrupted``):
    record it as Failed and queue the task again with attempt + 1."""

    def op(conn: sqlite3.Connection) -> bool:
        row = _held(conn, move, task_id, owner, attempt)
        if row is None:
            return False
        ready_at = at if run_after is None else run_after
        conn.execute(
            f"UPDATE tasks SET {_REQUEUE} WHERE seq = ?", (at, ready_at, run_after, error, row[0])
        )
        _record_attempt(conn, task_id, row, Status.FAILED, at, error, None, traceback)
        return True

    return op


def fail_interrupted(task_id: str, owner: str | None, attempt: int, reason: str, at: float) -> Move:
    def op(conn: sqlite3.Connection) -> bool:
        row = _held(conn, "fail_interrupted", task_id, owner, attempt)
        if row is None:
            return False
        conn.execute(
            "UPDATE tasks SET status = 'Failed', finished_at = ?, error = ?, owner = NULL, "
            "lease_until = NULL, paused_seconds = ?, paused_at = NULL WHERE seq = ?",
            (at, reason, _paused(row, at), row[0]),
        )
        _record_attempt(conn, task_id, row, Status.FAILED, at, reason, None, None)
        return True

    return op


def cancel(task_id: str, at: float) -> Move:
    def op(conn: sqlite3.Connection) -> bool:
        row = conn.execute(
            f"SELECT {_BEFORE} FROM tasks WHERE id = ? AND {guard('cancel')}",
            (task_id,),
        ).fetchone()
        if row is None:
            return False
        conn.execute(
            "UPDATE tasks SET status = 'Canceled', finished_at = ?, error = 'canceled' "
            "WHERE seq = ?",
            (at, row[0]),
        )
        _record_attempt(conn, task_id, row, Status.CANCELED, at, "canceled", None, None)
        return True

    return op


def pause(task_id: str, owner: str | None, at: float) -> Move:
    if owner is None:  # hold back a waiting task
        sql = f"UPDATE tasks SET status = 'Paused' WHERE id = ? AND {guard('pause', False)}"
        params: tuple[Any, ...] = (task_id,)
    else:
        sql = (  # the attempt stops running: its run time stops growing until resumed
            "UPDATE tasks SET status = 'Paused', paused_at = ? "
            f"WHERE id = ? AND {guard('pause', True)} AND owner = ?"
        )
        params = (at, task_id, owner)
    return _update(sql, params)


def resume(task_id: str, owner: str | None, at: float) -> Move:
    if owner is None:  # a held-back task rejoins the queue at its end
        sql = (
            "UPDATE tasks SET status = 'Queued', queued_at = ?, ready_at = ? "
            f"WHERE id = ? AND {guard('resume', False)}"
        )
        params: tuple[Any, ...] = (at, at, task_id)
    else:
        sql = (
            "UPDATE tasks SET status = 'Running', paused_seconds = paused_seconds + "
            "coalesce(max(? - paused_at, 0), 0), paused_at = NULL "
            f"WHERE id = ? AND {guard('resume', True)} AND owner = ?"
        )
        params = (at, task_id, owner)
    return _update(sql, params)


def rerun(task_id: str, at: float) -> Move:
    requeue = _update(
        f"UPDATE tasks SET {_REQUEUE} WHERE id = ? AND {guard('rerun')}",
        (at, at, None, None, task_id),
    )

    def op(conn: sqlite3.Connection) -> bool:
        # The new attempt overwrites the task row's account of the final one: keep it first.
        conn.execute(_KEEP_FINAL_ATTEMPT, (task_id,))
        return requeue(conn)

    return op


def update_config(task_id: str, config: Any) -> Move:
    text = json_text(config)
    aside = kept_aside(text)
    change = _update(
        f"UPDATE tasks SET config = ? WHERE id = ? AND {_NOT_STARTED}",
        ("" if aside else text, task_id),
    )

    def op(conn: sqlite3.Connection) -> bool:
        if not change(conn):
            return False
        # The config it replaces may have been kept aside: this one is the only one kept.
        conn.execute(_CONFIG_DROP, (task_id,))
        if aside:
            conn.execute(_CONFIG_SET_ASIDE, (text, task_id))
        return True

    return op


_CONFIG_DROP = "DELETE FROM task_configs WHERE seq = (SELECT seq FROM tasks WHERE id = ?)"
_CONFIG_SET_ASIDE = "INSERT INTO task_configs (seq, text) SELECT seq, ? FROM tasks WHERE id = ?"


def heartbeat(owner: str, task_ids: Sequence[str], lease_until: float) -> Callable[..., int]:
    rows = [(lease_until, task_id, owner) for task_id in task_ids]

    def op(conn: sqlite3.Connection) -> int:
        changed: int = conn.executemany(
            f"UPDATE tasks SET lease_until = ? WHERE id = ? AND owner = ? AND {HOLDS_SLOT}", rows
        ).rowcount
        return max(changed, 0)

    return op


def release(owner: str) -> Callable[..., int]:
    """No lease at all counts as ended (see ``held_tasks``)."""

    def op(conn: sqlite3.Connection) -> int:
        released: int = conn.execute(
            f"UPDATE tasks SET lease_until = NULL WHERE owner = ? AND {HOLDS_SLOT}", (owner,)
        ).rowcount
        return released

    return op


def _update(sql: str, params: tuple[Any, ...]) -> Move:
    def op(conn: sqlite3.Connection) -> bool:
        moved: bool = conn.execute(sql, params).rowcount == 1
        return moved

    return op


def _record_attempt(
    conn: sqlite3.Connection,
    task_id: str,
    before: tuple[Any, ...],
    outcome: Status,
    finished_at: float,
    error: str | None,
    result: str | None,
    traceback: str | None,
) -> None:
    """Keep the attempt history and the worker's timing aggregates in the same transaction.
    ``before``: the :data:`_BEFORE` columns as the attempt left them. An attempt that ends
    while Paused ran until its pause."""
    _, worker, attempt, queued_at, started_at, node, paused_seconds, paused_at = before
    paused = pause_ends(paused_at, paused_seconds, finished_at)
    conn.execute(
        "INSERT OR REPLACE INTO task_attempts (task_id, attempt, status, started_at, "
        "finished_at, error, result, traceback, node, paused_seconds) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            task_id,
            attempt,
            outcome.value,
            started_at,
            finished_at,
            error,
            result,
            traceback,
            node if started_at is not None else None,
            paused,
        ),
    )
    if started_at is None:
        return
    # The timing aggregates: gathered on the writer's connection for its commit (see
    # sqlite_totals), or added at once on any other connection.
    totals = conn.totals if isinstance(conn, WriterConnection) else AttemptTotals()
    totals.add(worker, started_at, queued_at, finished_at, paused, outcome.value)
    if not isinstance(conn, WriterConnection):
        totals.flush(conn)
