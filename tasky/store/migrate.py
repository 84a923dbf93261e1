"""Columns added after a table was first released, added to existing SQLite databases too.

``CREATE TABLE IF NOT EXISTS`` leaves a table from an older Tasky as it was, so a column that came
later is added here when missing, on every database (new ones included: one path, always taken).
An added column must be nullable or have a default, so old rows stay valid; what old rows need
to be right under the new column is set once, in the transaction that adds it. Indexes that
name an added column are created after it exists.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AddedColumn:
    table: str
    column: str
    kind: str  # SQL type and constraints
    # Statements that bring the rows of an older database in line, run when the column is added.
    backfill: tuple[str, ...] = ()


# In the order they were introduced.
ADDED_COLUMNS: tuple[AddedColumn, ...] = (
    # A failed attempt's traceback (Python workers).
    AddedColumn("task_attempts", "traceback", "TEXT"),
    # Queue order: when a task (re)joined its worker's queue (a retry: the end of its backoff).
    # Older versions kept the owner of a finished task; only a task holding a slot has one now.
    AddedColumn(
        "tasks",
        "ready_at",
        "REAL",
        backfill=(
            "UPDATE tasks SET ready_at = coalesce(run_after, queued_at, created_at) "
            "WHERE status = 'Queued'",
            "UPDATE tasks SET owner = NULL, lease_until = NULL "
            "WHERE owner IS NOT NULL AND status NOT IN ('Running', 'Paused')",
        ),
    ),
    # Where a task may run ("node:NAME", "label:LABEL"; NULL: anywhere), and the node that
    # started its latest attempt.
    AddedColumn("tasks", "target", "TEXT"),
    AddedColumn("tasks", "node", "TEXT"),
    AddedColumn("task_attempts", "node", "TEXT"),
    # The node that started a task's child process (see ChildRecord.node).
    AddedColumn("task_children", "node", "TEXT"),
    # Run time counts running time only: an attempt's time spent Paused, and when the current
    # pause began. An older database's paused running tasks count as paused from now on (when
    # their pause began was not recorded); its ended attempts keep run time = end - start.
    AddedColumn("tasks", "paused_seconds", "REAL NOT NULL DEFAULT 0"),
    AddedColumn(
        "tasks",
        "paused_at",
        "REAL",
        backfill=(
            "UPDATE tasks SET paused_at = (julianday('now') - 2440587.5) * 86400.0 "
            "WHERE status = 'Paused' AND owner IS NOT NULL",
        ),
    ),
    AddedColumn("task_attempts", "paused_seconds", "REAL NOT NULL DEFAULT 0"),
)

ADDED_INDEXES: tuple[str, ...] = (
    # The claim's range: a worker's Queued tasks in queue order. Partial, so that only joining
    # and leaving the queue touch it: a claimed or finished task is in none of its entries (the
    # full index of earlier versions, dropped here, moved an entry on every status change).
    "DROP INDEX IF EXISTS tasks_ready",
    "CREATE INDEX IF NOT EXISTS tasks_queue ON tasks (worker, status, ready_at, seq) "
    "WHERE status = 'Queued'",
    # The tasks holding a slot (few), counted by every claim without reading the waiting ones.
    "CREATE INDEX IF NOT EXISTS tasks_held ON tasks (worker, status) WHERE owner IS NOT NULL",
)


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Add what :data:`ADDED_COLUMNS` and :data:`ADDED_INDEXES` name and the database lacks, in
    one transaction; returns the ``table.column``s added."""
    added = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        for spec in ADDED_COLUMNS:
            have = {row[1] for row in conn.execute(f"PRAGMA table_info({spec.table})")}
            if spec.column not in have:
                conn.execute(f"ALTER TABLE {spec.table} ADD COLUMN {spec.column} {spec.kind}")
                for statement in spec.backfill:
                    conn.execute(statement)
                added.append(f"{spec.table}.{spec.column}")
        for statement in ADDED_INDEXES:
            conn.execute(statement)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return added
