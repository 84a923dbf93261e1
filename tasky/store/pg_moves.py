"""The PostgreSQL store's status-moving operations, each one statement (so one transaction).

Every operation finds its task with the guard of its entry in ``tasky.states.MOVES`` (plus the
owner and attempt for work a node holds) and locks it; a task that does not match, or that
another transaction changed so that it no longer matches, is left alone. An operation that ends
an attempt records it and frees the task's slot in the same statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tasky.states import MOVES, Status
from tasky.store.pg_database import Conn, clean, json_text
from tasky.store.pg_tasks import HOLDS_SLOT, guard
from tasky.store.records import Outcome

# What a task that joins the queue again (retry, crash, re-run) starts from: a new attempt with
# nothing left of the previous one but its error (for a retry or a crash).
_REQUEUE = (
    "status = 'Queued', attempt = t.attempt + 1, queued_at = %(at)s, ready_at = %(ready_at)s, "
    "run_after = %(run_after)s, started_at = NULL, finished_at = NULL, owner = NULL, "
    "lease_until = NULL, progress = NULL, progress_message = NULL, result = NULL, "
    "error = %(error)s, paused_seconds = 0, paused_at = NULL"
)
# An attempt that ends while Paused ran until its pause: the pause counts up to its end.
_PAUSED_UNTIL_END = (
    "paused_seconds = t.paused_seconds + coalesce(greatest(%(at)s - t.paused_at, 0), 0), "
    "paused_at = NULL"
)
_NOT_STARTED = "status IN ('Queued', 'Paused') AND owner IS NULL"
_HELD_BY = "owner IS NOT DISTINCT FROM %(owner)s AND attempt = %(attempt)s"


def _ending(where: str, sets: str) -> str:
    """One statement that ends an attempt: lock the task if it matches ``where``, apply ``sets``,
    free its slot, record the attempt (history) and, if it ran, its timing (statistics): run
    time counts running time only, up to the pause for an attempt that ends Paused."""
    return f"""
WITH old AS (
    SELECT seq, worker, attempt, queued_at, started_at, node,
        paused_seconds + coalesce(greatest(%(at)s - paused_at, 0), 0) AS paused
    FROM tasks WHERE id = %(id)s AND {where} FOR UPDATE
), moved AS (
    UPDATE tasks t SET {sets} FROM old WHERE t.seq = old.seq
    RETURNING old.worker, old.attempt, old.queued_at, old.started_at, old.node, old.paused
), freed AS (
    UPDATE worker_slots SET task_id = NULL
    WHERE task_id = %(id)s AND EXISTS (SELECT 1 FROM moved)
), recorded AS (
    INSERT INTO task_attempts (task_id, attempt, status, started_at, finished_at, error,
        result, traceback, node, paused_seconds)
    SELECT %(id)s, attempt, %(ended)s, started_at, %(at)s, %(error)s, %(result)s, %(traceback)s,
        CASE WHEN started_at IS NOT NULL THEN node END, paused
    FROM moved
    ON CONFLICT (task_id, attempt) DO UPDATE SET status = excluded.status,
        started_at = excluded.started_at, finished_at = excluded.finished_at,
        error = excluded.error, result = excluded.result, traceback = excluded.traceback,
        node = excluded.node, paused_seconds = excluded.paused_seconds
), timed AS (
    INSERT INTO ended_attempts (worker, status, minute, run_time, wait)
    SELECT worker, %(ended)s, %(minute)s, greatest(%(at)s - started_at - paused, 0),
        CASE WHEN queued_at IS NOT NULL THEN greatest(started_at - queued_at, 0) END
    FROM moved WHERE started_at IS NOT NULL
)
SELECT count(*) FROM moved
"""


_FINISH = _ending(
    f"{guard('finish')} AND {_HELD_BY}",
    "status = %(ended)s, finished_at = %(at)s, error = %(error)s, result = %(result)s, "
    "progress = CASE WHEN %(completed)s THEN 1.0 ELSE coalesce(%(progress)s, t.progress) END, "
    "progress_message = coalesce(%(message)s, t.progress_message), owner = NULL, "
    f"lease_until = NULL, {_PAUSED_UNTIL_END}",
)
_RETRY_LATER = _ending(f"{guard('retry_later')} AND {_HELD_BY}", _REQUEUE)
_REQUEUE_INTERRUPTED = _ending(f"{guard('requeue_interrupted')} AND {_HELD_BY}", _REQUEUE)
_FAIL_INTERRUPTED = _ending(
    f"{guard('fail_interrupted')} AND {_HELD_BY}",
    "status = 'Failed', finished_at = %(at)s, error = %(error)s, owner = NULL, "
    f"lease_until = NULL, {_PAUSED_UNTIL_END}",
)
_CANCEL = _ending(guard("cancel"), "status = 'Canceled', finished_at = %(at)s, error = %(error)s")


@dataclass(frozen=True, slots=True)
class Ending:
    """How an attempt ends, as :func:`end` writes it."""

    status: Status
    at: float
    error: str | None = None
    result: Any = None
    traceback: str | None = None


async def _end(conn: Conn, statement: str, task_id: str, ending: Ending, **extra: Any) -> bool:
    params: dict[str, Any] = {
        "id": task_id,
        "ended": ending.status.value,
        "at": ending.at,
        "minute": int(ending.at // 60),
        "error": clean(ending.error),
        "result": ending.result,
        "traceback": clean(ending.traceback),
        "owner": None,
        "attempt": None,
    }
    params.update(extra)
    row = await (await conn.execute(statement, params)).fetchone()
    return row is not None and row[0] == 1


async def finish(conn: Conn, task_id: str, owner: str, attempt: int, outcome: Outcome) -> bool:
    if outcome.status not in MOVES["finish"].targets:
        raise ValueError(f"an attempt cannot end as {outcome.status}")
    completed = outcome.status is Status.COMPLETED
    result = json_text(outcome.result) if completed and outcome.result is not None else None
    ending = Ending(outcome.status, outcome.at, outcome.error, result, outcome.traceback)
    return await _end(
        conn,
        _FINISH,
        task_id,
        ending,
        owner=owner,
        attempt=attempt,
        completed=completed,
        progress=outcome.progress,
        message=clean(outcome.progress_message),
    )


async def requeue(
    conn: Conn,
    move: str,
    task_id: str,
    owner: str | None,
    attempt: int,
    error: str,
    at: float,
    run_after: float | None = None,
    traceback: str | None = None,
) -> bool:
    """A held attempt failed (``retry_later``) or stopped with its node (``requeue_interrupted``):
    record it as Failed and queue the task again with attempt + 1."""
    statement = _RETRY_LATER if move == "retry_later" else _REQUEUE_INTERRUPTED
    return await _end(
        conn,
        statement,
        task_id,
        Ending(Status.FAILED, at, error, None, traceback),
        owner=owner,
        attempt=attempt,
        ready_at=at if run_after is None else run_after,
        run_after=run_after,
    )


async def fail_interrupted(
    conn: Conn, task_id: str, owner: str | None, attempt: int, reason: str, at: float
) -> bool:
    return await _end(
        conn,
        _FAIL_INTERRUPTED,
        task_id,
        Ending(Status.FAILED, at, reason),
        owner=owner,
        attempt=attempt,
    )


async def cancel(conn: Conn, task_id: str, at: float) -> bool:
    return await _end(conn, _CANCEL, task_id, Ending(Status.CANCELED, at, "canceled"))


def pause(task_id: str, owner: str | None, at: float) -> tuple[str, dict[str, Any]]:
    """The statement and parameters of :meth:`tasky.store.base.Store.pause`."""
    if owner is None:  # hold back a waiting task
        return (
            f"UPDATE tasks SET status = 'Paused' WHERE id = %(id)s AND {guard('pause', False)}",
            {"id": task_id},
        )
    return (  # the attempt stops running: its run time stops growing until resumed
        "UPDATE tasks SET status = 'Paused', paused_at = %(at)s "
        f"WHERE id = %(id)s AND {guard('pause', True)} AND owner = %(owner)s",
        {"id": task_id, "owner": owner, "at": at},
    )


def resume(task_id: str, owner: str | None, at: float) -> tuple[str, dict[str, Any]]:
    if owner is None:  # a held-back task rejoins the queue at its end
        return (
            "UPDATE tasks SET status = 'Queued', queued_at = %(at)s, ready_at = %(at)s "
            f"WHERE id = %(id)s AND {guard('resume', False)}",
            {"id": task_id, "at": at},
        )
    return (
        "UPDATE tasks SET status = 'Running', paused_seconds = paused_seconds + "
        "coalesce(greatest(%(at)s - paused_at, 0), 0), paused_at = NULL "
        f"WHERE id = %(id)s AND {guard('resume', True)} AND owner = %(owner)s",
        {"id": task_id, "owner": owner, "at": at},
    )


def rerun(task_id: str, at: float) -> tuple[str, dict[str, Any]]:
    return (
        f"UPDATE tasks t SET {_REQUEUE} WHERE id = %(id)s AND {guard('rerun')}",
        {"id": task_id, "at": at, "ready_at": at, "run_after": None, "error": None},
    )


def update_config(task_id: str, config: Any) -> tuple[str, dict[str, Any]]:
    return (
        f"UPDATE tasks SET config = %(config)s WHERE id = %(id)s AND {_NOT_STARTED}",
        {"id": task_id, "config": json_text(config)},
    )


def heartbeat(
    owner: str, task_ids: Sequence[str], lease_until: float
) -> tuple[str, tuple[Any, ...]]:
    return (
        f"UPDATE tasks SET lease_until = %s WHERE id = ANY(%s) AND owner = %s AND {HOLDS_SLOT}",
        (lease_until, list(task_ids), owner),
    )


def release(owner: str) -> tuple[str, tuple[Any, ...]]:
    """No lease at all counts as ended (see ``held_tasks``); the tasks keep their slots until
    recovery moves them (they may still be running)."""
    return (
        f"UPDATE tasks SET lease_until = NULL WHERE owner = %s AND {HOLDS_SLOT}",
        (owner,),
    )
