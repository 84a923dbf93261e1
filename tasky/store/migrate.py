"""Columns added after a table was first released, added to existing SQLite databases too.

``CREATE TABLE IF NOT EXISTS`` leaves a table from an older Tasky as it was, so a column that came
later is added here when missing, on every database (new ones included: one path, always taken).
An added column must be nullable or have a default, so old rows stay valid.
"""

from __future__ import annotations

import sqlite3

# (table, column, SQL type and constraints), in the order they were introduced.
ADDED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    # A failed attempt's traceback (Python workers).
    ("task_attempts", "traceback", "TEXT"),
)


def add_missing_columns(conn: sqlite3.Connection) -> list[str]:
    """Add each column of :data:`ADDED_COLUMNS` its table lacks; returns the ``table.column``s."""
    added = []
    for table, column, kind in ADDED_COLUMNS:
        have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if column not in have:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
            added.append(f"{table}.{column}")
    return added
