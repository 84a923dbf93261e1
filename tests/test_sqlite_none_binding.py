"""None is bound through the adapter the SQLite store registers (tasky.store.sqlite): without it,
the sqlite3 module raises and clears a formatted AttributeError for every None it binds."""

from __future__ import annotations

import sqlite3

import tasky.store.sqlite  # noqa: F401 - registers the adapter on import


def test_none_has_an_adapter_that_hands_it_back() -> None:
    adapter = sqlite3.adapters.get((type(None), sqlite3.PrepareProtocol))
    assert adapter is not None, "no adapter for None: each bound None costs a raised error"
    assert adapter(None) is None


def test_a_bound_none_is_still_stored_as_null() -> None:
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("CREATE TABLE t (a, b)")
        conn.execute("INSERT INTO t VALUES (?, ?)", (None, "x"))
        conn.executemany("INSERT INTO t VALUES (?, ?)", [(None, "y"), (1, None)])
        rows = conn.execute("SELECT a IS NULL, b IS NULL, typeof(a), a FROM t").fetchall()
    finally:
        conn.close()
    assert rows == [(1, 0, "null", None), (1, 0, "null", None), (0, 1, "integer", 1)]
