"""Columns added after a table was first released, added to existing SQLite databases too; and
tables whose columns a newer version keeps in another order, rebuilt in that order.

``CREATE TABLE IF NOT EXISTS`` leaves a table from an older Tasky as it was, so a column that came
later is added here when missing, on every database (new ones included: one path, always taken).
An added column must be nullable or have a default, so old rows stay valid; what old rows need
to be right under the new column is set once, in the transaction that adds it. Indexes that
name an added column are created after it exists.

Column order matters to SQLite: a row is stored as its values in order, and a value that does
not fit in the row's page goes on to a chain of overflow pages, which a read of any later column
has to walk. So a table keeps its large values (a chain's definition: tens of bytes per step)
after the small ones every write checks (its status), and an older table with another order is
rebuilt (:class:`TableLayout`), in the same transaction as the rest.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
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


@dataclass(frozen=True, slots=True)
class TableLayout:
    """A table's columns in the order it keeps them, and its indexes: what creates the table,
    and what an older table with the same columns in another order is rebuilt to."""

    table: str
    columns: tuple[tuple[str, str], ...]  # (name, SQL type and constraints), in order
    indexes: tuple[str, ...] = ()  # CREATE INDEX IF NOT EXISTS statements

    def create(self, name: str | None = None) -> str:
        body = ",\n    ".join(f"{column} {kind}" for column, kind in self.columns)
        return f"CREATE TABLE IF NOT EXISTS {name or self.table} (\n    {body}\n);\n"

    def schema(self) -> str:
        """The table and its indexes, for a new database."""
        return self.create() + "".join(f"{statement};\n" for statement in self.indexes)


def _rebuild_in_order(conn: sqlite3.Connection, layout: TableLayout) -> None:
    """Rebuild ``layout.table`` with its columns in the layout's order, if they are in another.
    Rows keep every value (and their rowids); columns the table lacks take their
    defaults. A column the layout does not name (a newer Tasky's) stops it: dropping it would
    lose data."""
    have = [row[1] for row in conn.execute(f"PRAGMA table_info({layout.table})")]
    wanted = [column for column, _ in layout.columns]
    unknown = [column for column in have if column not in wanted]
    if unknown:
        raise RuntimeError(
            f"table {layout.table} has columns this version of Tasky does not know: "
            f"{', '.join(unknown)} (made by a newer version?)"
        )
    if have == [column for column in wanted if column in have]:
        return
    rebuilt = f"{layout.table}_rebuilt"
    common = ", ".join(column for column in wanted if column in have)
    conn.execute(layout.create(rebuilt))
    conn.execute(f"INSERT INTO {rebuilt} ({common}) SELECT {common} FROM {layout.table}")
    conn.execute(f"DROP TABLE {layout.table}")  # and its indexes
    conn.execute(f"ALTER TABLE {rebuilt} RENAME TO {layout.table}")
    for statement in layout.indexes:
        conn.execute(statement)


def migrate(conn: sqlite3.Connection, layouts: Sequence[TableLayout] = ()) -> list[str]:
    """Add what :data:`ADDED_COLUMNS` and :data:`ADDED_INDEXES` name and the database lacks, and
    rebuild the tables of ``layouts`` whose columns are in another order, in one transaction;
    returns the ``table.column``s added."""
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
        for layout in layouts:
            _rebuild_in_order(conn, layout)
        for statement in ADDED_INDEXES:
            conn.execute(statement)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return added
