"""Chains in the SQLite store: their tables live in the task store's own database file and are
written through its single writer (its group commit), so a chain's state and its tasks commit
together (see tasky.store.chain_base for the contract)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

import orjson

from tasky.states import ACTIVE, CHAIN_MOVES, FINISHED, Status
from tasky.store.chain_records import (
    ChainPage,
    ChainPruned,
    ChainRecord,
    ChainState,
    DefinitionRecord,
    StepAdvance,
    StepRecord,
    count_statuses,
)
from tasky.store.migrate import TableLayout
from tasky.store.records import Claim, IdempotencyRecord, TaskRecord
from tasky.store.sql_chain_moves import SqlChainMoves
from tasky.store.sql_rows import (
    CHAIN_COLUMNS,
    CHAIN_SUMMARY_COLUMNS,
    STEP_COLUMNS,
    as_is,
    chain_values,
    row_to_chain,
    row_to_step,
    step_saved,
    step_values,
)
from tasky.store.sqlite_common import claim_key, delete_tasks, read_page
from tasky.store.sqlite_tasks import Placement, insert_one, json_text

# The large values last (parameters, result, the definition): each step's write checks the
# chain's status and restarts, and with the definition before them (as in earlier versions) that
# read walked the definition's overflow pages, so a step cost more the longer its chain was (see
# tasky.store.migrate, which rebuilds an older table in this order).
CHAINS = TableLayout(
    "chains",
    (
        ("seq", "INTEGER PRIMARY KEY"),
        ("id", "TEXT NOT NULL UNIQUE"),
        ("name", "TEXT"),
        ("definition", "TEXT"),
        ("status", "TEXT NOT NULL"),
        ("created_at", "REAL NOT NULL"),
        ("finished_at", "REAL"),
        ("error", "TEXT"),
        ("restarts", "INTEGER NOT NULL DEFAULT 0"),
        ("parameters", "TEXT NOT NULL"),
        ("result", "TEXT"),
        ("spec", "TEXT NOT NULL"),
    ),
    (
        "CREATE INDEX IF NOT EXISTS chains_status ON chains (status, seq)",
        # Retention reads finished chains by age.
        "CREATE INDEX IF NOT EXISTS chains_finished ON chains (finished_at) "
        "WHERE finished_at IS NOT NULL",
    ),
)

CHAIN_SCHEMA = (
    CHAINS.schema()
    + """
CREATE TABLE IF NOT EXISTS chain_steps (
    chain_id TEXT NOT NULL,
    name TEXT NOT NULL,
    position INTEGER NOT NULL,
    state TEXT NOT NULL,
    task_id TEXT,
    error TEXT,
    decided_at REAL,
    rerun_attempt INTEGER,
    history TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (chain_id, name)
) WITHOUT ROWID;
-- A long chain's steps are read a page at a time, in definition order.
CREATE INDEX IF NOT EXISTS chain_steps_position ON chain_steps (chain_id, position);
CREATE TABLE IF NOT EXISTS chain_definitions (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
"""
)

_INSERT_CHAIN = (
    "INSERT INTO chains (id, name, definition, spec, parameters, status, created_at, "
    "finished_at, error, result, restarts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_STEP = (
    "INSERT INTO chain_steps (chain_id, name, position, state, task_id, error, decided_at, "
    "rerun_attempt, history) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_CLAIM_STEP = (
    "UPDATE chain_steps SET task_id = ? "
    "WHERE chain_id = ? AND name = ? AND state = 'pending' AND task_id IS NULL"
)
# Steps grouped by what decides their status (few groups): see count_statuses.
_STEP_COUNTS = (
    "SELECT s.state, s.rerun_attempt, t.status, t.attempt, count(*) FROM chain_steps s "
    "LEFT JOIN tasks t ON t.id = s.task_id WHERE s.chain_id = ? "
    "GROUP BY s.state, s.rerun_attempt, t.status, t.attempt"
)
# What an advance starts from: the step's task ended as planned, the chain runs as it was planned.
_ENDED = "SELECT 1 FROM tasks WHERE id = ? AND status = ? AND attempt = ?"
_RUNNING_AT = "SELECT 1 FROM chains WHERE id = ? AND status = 'Running' AND restarts = ?"
_SAVE_STEP = (
    "UPDATE chain_steps SET state = ?, task_id = ?, error = ?, decided_at = ?, "
    "rerun_attempt = ?, history = ? WHERE chain_id = ? AND name = ?"
)

T = TypeVar("T")
Op = Callable[[sqlite3.Connection], T]


class Database(Protocol):
    """What the chain store uses of the SQLite task store: its writer and its reader."""

    async def write(self, op: Op[T]) -> T: ...

    @property
    def reader(self) -> sqlite3.Connection: ...


class SqliteChainStore(SqlChainMoves):
    """Chains in the database of a :class:`tasky.store.sqlite.SqliteStore` (``store.chains``)."""

    _mark = "?"

    advances = True

    def __init__(self, db: Database) -> None:
        self._db = db

    # -- chains ---------------------------------------------------------------------------------
    async def create(self, chain: ChainRecord, steps: Sequence[StepRecord]) -> None:
        await self._db.write(_create_op(chain, steps))

    async def create_with_key(
        self, chain: ChainRecord, steps: Sequence[StepRecord], key: IdempotencyRecord
    ) -> IdempotencyRecord | None:
        create = _create_op(chain, steps)

        def op(conn: sqlite3.Connection) -> IdempotencyRecord | None:
            existing = claim_key(conn, key)
            if existing is None:
                create(conn)
            return existing

        return await self._db.write(op)

    async def get(self, chain_id: str) -> ChainRecord | None:
        row = self._db.reader.execute(
            f"SELECT {CHAIN_COLUMNS} FROM chains WHERE id = ?", (chain_id,)
        ).fetchone()
        return None if row is None else row_to_chain(row)

    async def state(self, chain_id: str) -> ChainState | None:
        row = self._db.reader.execute(
            "SELECT status, restarts FROM chains WHERE id = ?", (chain_id,)
        ).fetchone()
        return None if row is None else ChainState(Status(row[0]), row[1])

    async def steps(self, chain_id: str) -> list[StepRecord]:
        rows = self._db.reader.execute(
            f"SELECT {STEP_COLUMNS} FROM chain_steps WHERE chain_id = ? ORDER BY position",
            (chain_id,),
        ).fetchall()
        return [row_to_step(chain_id, r) for r in rows]

    async def steps_page(
        self, chain_id: str, *, after: int | None = None, limit: int = 100
    ) -> list[StepRecord]:
        rows = self._db.reader.execute(
            f"SELECT {STEP_COLUMNS} FROM chain_steps WHERE chain_id = ? AND position > ? "
            "ORDER BY position LIMIT ?",
            (chain_id, -1 if after is None else after, limit),
        ).fetchall()
        return [row_to_step(chain_id, r) for r in rows]

    async def step_counts(self, chain_id: str) -> dict[str, int]:
        rows = self._db.reader.execute(_STEP_COUNTS, (chain_id,)).fetchall()
        return count_statuses(rows)

    async def list_chains(
        self,
        *,
        status: Status | None = None,
        limit: int = 100,
        cursor: int | None = None,
        descending: bool = False,
    ) -> ChainPage:
        filters = {"status": None if status is None else status.value}
        select = f"SELECT {CHAIN_SUMMARY_COLUMNS} FROM chains"
        rows, next_cursor = read_page(self._db.reader, select, filters, limit, cursor, descending)
        return ChainPage([row_to_chain(r) for r in rows], next_cursor)

    async def ids_with_status(self, statuses: Sequence[Status]) -> list[str]:
        marks = ", ".join("?" * len(statuses))
        rows = self._db.reader.execute(
            f"SELECT id FROM chains WHERE status IN ({marks}) ORDER BY seq",
            [s.value for s in statuses],
        ).fetchall()
        return [r[0] for r in rows]

    async def active_tasks_of(self, statuses: Sequence[Status]) -> list[tuple[str, str]]:
        # From the few unfinished tasks (indexed by status) to their chains, not the other way.
        task_marks = ", ".join("?" * len(ACTIVE))
        chain_marks = ", ".join("?" * len(statuses))
        rows = self._db.reader.execute(
            f"SELECT t.chain_id, t.id FROM tasks t JOIN chains c ON c.id = t.chain_id "
            f"WHERE t.status IN ({task_marks}) AND t.chain_id IS NOT NULL "
            f"AND c.status IN ({chain_marks}) ORDER BY t.seq",
            [*(s.value for s in ACTIVE), *(s.value for s in statuses)],
        ).fetchall()
        return [(r[0], r[1]) for r in rows]

    async def save_steps(self, steps: Sequence[StepRecord]) -> None:
        rows = [step_saved(s, as_is) for s in steps]
        if not rows:
            return

        def op(conn: sqlite3.Connection) -> None:
            conn.executemany(_SAVE_STEP, rows)

        await self._db.write(op)

    async def claim_steps(self, chain_id: str, claims: Sequence[tuple[str, str]]) -> list[str]:
        wanted = list(claims)
        if not wanted:
            return []

        def op(conn: sqlite3.Connection) -> list[str]:
            running = conn.execute(
                "SELECT 1 FROM chains WHERE id = ? AND status = ?",
                (chain_id, Status.RUNNING.value),
            ).fetchone()
            if running is None:
                return []
            return [
                name
                for name, task_id in wanted
                if conn.execute(_CLAIM_STEP, (task_id, chain_id, name)).rowcount == 1
            ]

        return await self._db.write(op)

    async def advance(
        self, advance: StepAdvance, task: TaskRecord, claim: Claim | None
    ) -> tuple[TaskRecord, list[str]] | None:
        chain_id = advance.chain_id
        ended = (advance.after_task, advance.after_status.value, advance.after_attempt)
        step_rows = [step_saved(s, as_is) for s in advance.steps]
        claims = list(advance.claims)
        config = json_text(task.config)
        given = (task.status, task.owner, task.lease_until, task.started_at, task.node)

        def op(conn: sqlite3.Connection) -> tuple[TaskRecord, list[str]] | None:
            if conn.execute(_ENDED, ended).fetchone() is None:
                return None
            if conn.execute(_RUNNING_AT, (chain_id, advance.restarts)).fetchone() is None:
                return None
            # A replayed batch runs this again: the task as given, not as the undone run left it.
            task.status, task.owner, task.lease_until, task.started_at, task.node = given
            conn.executemany(_SAVE_STEP, step_rows)
            claimed = [
                name
                for name, task_id in claims
                if conn.execute(_CLAIM_STEP, (task_id, chain_id, name)).rowcount == 1
            ]
            start = Placement(conn, claim is not None).place(task, claim)
            return insert_one(conn, task, config, start), claimed

        return await self._db.write(op)

    # -- status moves (finish_chain ... restart_chain: SqlChainMoves) ---------------------------
    async def _move(
        self,
        chain_id: str,
        move: str,
        new: Status,
        sets: str = "",
        params: Sequence[Any] = (),
        steps: Sequence[StepRecord] = (),
    ) -> bool:
        """Compare-and-set the chain from ``CHAIN_MOVES[move]``'s sources to ``new``, with the
        columns ``sets`` assigns (from ``params``) and ``steps`` saved in the same write."""
        sources = [s.value for s in CHAIN_MOVES[move].sources]
        marks = ", ".join("?" * len(sources))
        assignments = ", ".join(filter(None, ["status = ?", sets]))
        sql = f"UPDATE chains SET {assignments} WHERE id = ? AND status IN ({marks})"
        all_params = (new.value, *params, chain_id, *sources)
        step_rows = [step_saved(s, as_is) for s in steps]

        def op(conn: sqlite3.Connection) -> bool:
            if conn.execute(sql, all_params).rowcount == 0:
                return False
            conn.executemany(_SAVE_STEP, step_rows)
            return True

        return await self._db.write(op)

    # -- named definitions ----------------------------------------------------------------------
    async def put_definition(self, record: DefinitionRecord) -> bool:
        row = (record.name, json_text(record.spec), record.created_at, record.updated_at)

        def op(conn: sqlite3.Connection) -> bool:
            existed = conn.execute(
                "SELECT 1 FROM chain_definitions WHERE name = ?", (record.name,)
            ).fetchone()
            conn.execute(
                "INSERT INTO chain_definitions (name, spec, created_at, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, "
                "updated_at = excluded.updated_at",
                row,
            )
            return existed is None

        return await self._db.write(op)

    async def get_definition(self, name: str) -> DefinitionRecord | None:
        row = self._db.reader.execute(
            "SELECT name, spec, created_at, updated_at FROM chain_definitions WHERE name = ?",
            (name,),
        ).fetchone()
        return None if row is None else DefinitionRecord(row[0], orjson.loads(row[1]), *row[2:])

    async def list_definitions(self) -> list[DefinitionRecord]:
        rows = self._db.reader.execute(
            "SELECT name, spec, created_at, updated_at FROM chain_definitions ORDER BY name"
        ).fetchall()
        return [DefinitionRecord(r[0], orjson.loads(r[1]), r[2], r[3]) for r in rows]

    async def delete_definition(self, name: str) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            sql = "DELETE FROM chain_definitions WHERE name = ?"
            return conn.execute(sql, (name,)).rowcount > 0

        return await self._db.write(op)

    # -- retention ------------------------------------------------------------------------------
    async def prune_finished(self, before: float, limit: int) -> ChainPruned:
        where, params = _prunable_chains(before)

        def op(conn: sqlite3.Connection) -> ChainPruned:
            # Every chain costs at least its own row, so ``limit`` chains are all one write uses.
            ids = [r[0] for r in conn.execute(f"SELECT c.id {where} LIMIT ?", (*params, limit))]
            budget, tasks, steps, chains = limit, 0, 0, 0
            for chain_id in ids:
                task_ids = [
                    r[0]
                    for r in conn.execute(
                        "SELECT id FROM tasks WHERE chain_id = ? LIMIT ?", (chain_id, budget)
                    )
                ]
                tasks += delete_tasks(conn, task_ids)
                budget -= len(task_ids)
                if budget <= 0:
                    break
                gone = conn.execute(
                    "DELETE FROM chain_steps WHERE chain_id = ? AND name IN "
                    "(SELECT name FROM chain_steps WHERE chain_id = ? LIMIT ?)",
                    (chain_id, chain_id, budget),
                ).rowcount
                steps += gone
                budget -= gone
                if budget <= 0:
                    break
                conn.execute("DELETE FROM chains WHERE id = ?", (chain_id,))
                chains += 1
                budget -= 1
                if budget <= 0:
                    break
            return ChainPruned(tasks, steps, chains)

        return await self._db.write(op)

    async def count_prunable(self, before: float) -> int:
        where, params = _prunable_chains(before)
        count: int = self._db.reader.execute(f"SELECT count(*) {where}", params).fetchone()[0]
        return count


def _create_op(chain: ChainRecord, steps: Sequence[StepRecord]) -> Op[None]:
    chain_row = chain_values(chain, as_is)
    step_rows = [step_values(s, as_is) for s in steps]

    def op(conn: sqlite3.Connection) -> None:
        conn.execute(_INSERT_CHAIN, chain_row)
        conn.executemany(_INSERT_STEP, step_rows)

    return op


def _prunable_chains(before: float) -> tuple[str, list[Any]]:
    finished = ", ".join("?" * len(FINISHED))
    active = ", ".join("?" * len(ACTIVE))
    sql = (
        # By age, not by status: the finished chains that are not old yet are never read.
        "FROM chains c INDEXED BY chains_finished "
        "WHERE c.finished_at IS NOT NULL AND c.finished_at < ? "
        f"AND c.status IN ({finished}) AND NOT EXISTS (SELECT 1 FROM tasks t "
        f"WHERE t.chain_id = c.id AND t.status IN ({active}))"
    )
    return sql, [before, *(s.value for s in FINISHED), *(s.value for s in ACTIVE)]
