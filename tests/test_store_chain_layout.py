"""The chains table keeps a chain's large values (its definition) after the columns each step's
write checks, so that reading a chain's status does not walk the definition's overflow pages
(a step of a 10,000-step chain would cost more than one of a 10-step chain); an older database,
with the definition first, is rebuilt in that order when it is opened, keeping every row."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest

from tasky.states import Status
from tasky.store.chain_records import ChainRecord
from tasky.store.migrate import TableLayout, migrate
from tasky.store.sqlite import SCHEMA, SqliteStore
from tasky.store.sqlite_chains import CHAIN_SCHEMA, CHAINS

# The chains table as versions before this layout made it.
_OLD_CHAINS = """
CREATE TABLE chains (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    name TEXT,
    definition TEXT,
    spec TEXT NOT NULL,
    parameters TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    finished_at REAL,
    error TEXT,
    result TEXT,
    restarts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX chains_status ON chains (status, seq);
CREATE INDEX chains_finished ON chains (finished_at) WHERE finished_at IS NOT NULL;
"""
_OLD_COLUMNS = (
    "seq, id, name, definition, spec, parameters, status, created_at, finished_at, error, "
    "result, restarts"
)


def _long_spec(steps: int) -> dict[str, Any]:
    return {"steps": [{"name": f"step-{i}", "worker": "Echo"} for i in range(steps)]}


def _columns(path: Path, table: str = "chains") -> list[str]:
    with sqlite3.connect(path) as conn:
        return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def _indexes(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE tbl_name = 'chains'")
        return {row[0] for row in rows if row[0] != "chains"}


def _old_database(path: Path) -> list[tuple[Any, ...]]:
    """A database whose chains table has the old order, with two chains (one long, finished);
    returns its rows as the old table holds them."""
    conn = sqlite3.connect(path)
    conn.executescript(_OLD_CHAINS)
    rows = [
        (7, "a" * 32, "long", None, orjson.dumps(_long_spec(2000)).decode(), '{"p": 1}',
         "Running", 100.0, None, None, None, 2),
        (9, "b" * 32, None, "nightly", orjson.dumps(_long_spec(3)).decode(), "{}",
         "Completed", 200.0, 250.5, "an error", '{"out": [1, 2]}', 0),
    ]  # fmt: skip
    conn.executemany(f"INSERT INTO chains ({_OLD_COLUMNS}) VALUES ({', '.join('?' * 12)})", rows)
    conn.commit()
    conn.close()
    return rows


def _overflow_pages(path: Path) -> list[int]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT pageno FROM dbstat WHERE name = 'chains' AND pagetype = 'overflow'"
        )
        return [row[0] for row in rows]


def _wreck_pages(path: Path, pages: list[int]) -> None:
    """Overwrite ``pages`` of the database file with garbage (a read that reaches one fails)."""
    with sqlite3.connect(path) as conn:
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with path.open("r+b") as f:
        for page in pages:
            f.seek((page - 1) * size)
            f.write(b"\xa5" * size)


def test_a_new_database_keeps_the_definition_last(tmp_path: Path) -> None:
    path = tmp_path / "tasky.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(CHAINS.schema())
    assert _columns(path) == [column for column, _ in CHAINS.columns]
    assert _columns(path)[-3:] == ["parameters", "result", "spec"]
    assert {"chains_status", "chains_finished"} <= _indexes(path)


async def test_a_step_reads_the_status_without_the_definition(tmp_path: Path) -> None:
    """The attack on the layout itself: with the definition's overflow pages destroyed, the
    status and restarts (what each step's write checks) still read, so the read never reached
    them. With the definition before them (the old order) the same read fails."""
    path = tmp_path / "tasky.db"
    store = SqliteStore(path)
    await store.open()
    chain = ChainRecord("c" * 32, _long_spec(2000), {}, Status.RUNNING, 1.0, restarts=3)
    try:
        await store.chains.create(chain, [])
    finally:
        await store.close()
    pages = _overflow_pages(path)
    assert len(pages) > 10  # the definition overflows its row's page
    _wreck_pages(path, pages)
    with sqlite3.connect(path) as conn:
        row = conn.execute(
            "SELECT status, restarts, created_at FROM chains WHERE id = ?", (chain.id,)
        ).fetchone()
        assert row == ("Running", 3, 1.0)
        with pytest.raises(sqlite3.DatabaseError):
            conn.execute("SELECT spec FROM chains WHERE id = ?", (chain.id,)).fetchone()

    old = tmp_path / "old.db"
    _old_database(old)
    _wreck_pages(old, _overflow_pages(old))
    with sqlite3.connect(old) as conn, pytest.raises(sqlite3.DatabaseError):
        conn.execute("SELECT status FROM chains WHERE id = ?", ("a" * 32,)).fetchone()


async def test_an_older_database_is_rebuilt_in_order_keeping_every_row(tmp_path: Path) -> None:
    path = tmp_path / "tasky.db"
    rows = _old_database(path)
    store = SqliteStore(path)
    await store.open()
    try:
        long = await store.chains.get("a" * 32)
        done = await store.chains.get("b" * 32)
        page = await store.chains.list_chains()
        state = await store.chains.state("a" * 32)
    finally:
        await store.close()
    assert _columns(path) == [column for column, _ in CHAINS.columns]
    assert {"chains_status", "chains_finished"} <= _indexes(path)
    with sqlite3.connect(path) as conn:
        kept = conn.execute(f"SELECT {_OLD_COLUMNS} FROM chains ORDER BY seq").fetchall()
        plans = {
            row[3]
            for index in ("chains_status", "chains_finished")
            for row in conn.execute(
                f"EXPLAIN QUERY PLAN SELECT seq FROM chains INDEXED BY {index} "
                "WHERE status = 'Completed' AND finished_at > 0"
            )
        }
    assert kept == rows
    assert any("chains_status" in plan for plan in plans)
    assert any("chains_finished" in plan for plan in plans)
    assert long is not None and long.spec == _long_spec(2000) and long.restarts == 2
    assert long.parameters == {"p": 1} and long.name == "long" and long.seq == 7
    assert done is not None and done.result == {"out": [1, 2]} and done.finished_at == 250.5
    assert done.definition == "nightly" and done.error == "an error"
    assert [c.id for c in page.chains] == ["a" * 32, "b" * 32]
    assert state is not None and state.status is Status.RUNNING and state.restarts == 2


def test_a_table_in_order_is_left_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "tasky.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(SCHEMA + CHAIN_SCHEMA)
        conn.execute(
            "INSERT INTO chains (id, spec, parameters, status, created_at) "
            "VALUES ('x', '{}', '{}', 'Running', 1)"
        )
        conn.commit()
        before = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'chains'").fetchone()
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, [CHAINS])
    after = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'chains'").fetchone()
    conn.close()
    assert after == before  # not rebuilt: the same b-tree


def test_missing_columns_take_their_defaults_and_unknown_ones_stop_the_rebuild(
    tmp_path: Path,
) -> None:
    layout = TableLayout(
        "things",
        (("id", "INTEGER PRIMARY KEY"), ("small", "TEXT"), ("added", "INTEGER NOT NULL DEFAULT 5"),
         ("big", "TEXT")),
    )  # fmt: skip
    path = tmp_path / "t.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(SCHEMA)  # what migrate adds columns to
    conn.execute("CREATE TABLE things (id INTEGER PRIMARY KEY, big TEXT, small TEXT)")
    conn.execute("INSERT INTO things VALUES (4, 'large', 'tiny')")
    migrate(conn, [layout])
    assert _columns(path, "things") == ["id", "small", "added", "big"]
    assert conn.execute("SELECT * FROM things").fetchall() == [(4, "tiny", 5, "large")]

    conn.execute("CREATE TABLE newer (id INTEGER PRIMARY KEY, big TEXT, small TEXT, later TEXT)")
    conn.execute("INSERT INTO newer VALUES (1, 'b', 's', 'kept')")
    newer = TableLayout(
        "newer", (("id", "INTEGER PRIMARY KEY"), ("small", "TEXT"), ("big", "TEXT"))
    )
    with pytest.raises(RuntimeError, match="later"):
        migrate(conn, [newer])
    # Nothing changed: the whole migration is one transaction, rolled back.
    assert _columns(path, "newer") == ["id", "big", "small", "later"]
    assert conn.execute("SELECT * FROM newer").fetchall() == [(1, "b", "s", "kept")]
    conn.close()
