"""SQL helpers shared by the two halves of the SQLite store: tasks (tasky.store.sqlite) and
chains (tasky.store.sqlite_chains), which live in one database and write through one writer.
(The JSON column helpers are in tasky.store.sqlite_tasks.)"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from tasky.store.records import IdempotencyRecord
from tasky.store.sql_page import page_query, split_page

KEY_COLUMNS = "principal, key, fingerprint, target_id, created_at, expires_at"


def read_page(
    conn: sqlite3.Connection,
    select: str,
    filters: dict[str, Any],
    limit: int,
    cursor: int | None,
    descending: bool,
    conditions: Sequence[tuple[str, Any]] = (),
) -> tuple[list[tuple[Any, ...]], int | None]:
    """One page of ``select`` in ``seq`` order after ``cursor``, and the next page's cursor
    (see tasky.store.sql_page.page_query; conditions use ``?``)."""
    sql, params = page_query(select, filters, limit, cursor, descending, conditions, "?")
    return split_page(conn.execute(sql, params).fetchall(), limit)


def claim_key(conn: sqlite3.Connection, key: IdempotencyRecord) -> IdempotencyRecord | None:
    """Inside a write transaction: the principal's unexpired record of ``key`` if there is one;
    otherwise ``key`` is recorded (replacing an expired one) and None returned.

    The caller inserts what ``key`` names in the same transaction, so a key never outlives a
    crash without its task or chain, nor the other way round.
    """
    row = conn.execute(
        f"SELECT {KEY_COLUMNS} FROM idempotency_keys "
        "WHERE principal = ? AND key = ? AND expires_at > ?",
        (key.principal, key.key, key.created_at),
    ).fetchone()
    if row is not None:
        return IdempotencyRecord(*row)
    conn.execute(
        f"INSERT INTO idempotency_keys ({KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (principal, key) DO UPDATE SET fingerprint = excluded.fingerprint, "
        "target_id = excluded.target_id, created_at = excluded.created_at, "
        "expires_at = excluded.expires_at",
        (key.principal, key.key, key.fingerprint, key.target_id, key.created_at, key.expires_at),
    )
    return None


def delete_tasks(conn: sqlite3.Connection, task_ids: Sequence[str]) -> int:
    """Delete tasks with their logs, attempts and remembered children; status_counts, the timing
    aggregates and the histograms are left alone (no DELETE trigger), so statistics keep
    counting what was pruned. Shared with the chain store, whose finished chains take their
    tasks along."""
    rows = [(task_id,) for task_id in task_ids]
    # Configs kept aside (sqlite_tasks.CONFIG_ASIDE) go with their rows; most stores keep none,
    # and a prune of a million tasks would look each one up for nothing.
    if conn.execute("SELECT EXISTS (SELECT 1 FROM task_configs)").fetchone()[0]:
        conn.executemany(
            "DELETE FROM task_configs WHERE seq = (SELECT seq FROM tasks WHERE id = ?)", rows
        )
    conn.executemany("DELETE FROM task_logs WHERE task_id = ?", rows)
    conn.executemany("DELETE FROM task_attempts WHERE task_id = ?", rows)
    conn.executemany("DELETE FROM task_children WHERE task_id = ?", rows)
    deleted: int = conn.executemany("DELETE FROM tasks WHERE id = ?", rows).rowcount
    return deleted
