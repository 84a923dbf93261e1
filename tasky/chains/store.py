"""Durable chain storage: the ChainStore protocol and its SQLite implementation.

Chain tables live in the task store's own SQLite file and are written through that store's
single writer (its group commit), so a chain's state and its tasks share one durability story:
whatever the API acknowledged survives ``kill -9``. Each method is one transaction, which is what
makes the runner crash-safe (for instance, a chain's status and its steps' states change
together on cancel and restart).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import orjson

from tasky.chains.records import ChainPage, ChainRecord, DefinitionRecord, StepRecord
from tasky.states import ACTIVE, FINISHED, Status
from tasky.store.records import IdempotencyRecord
from tasky.store.sqlite import (
    SqliteStore,
    claim_key,
    delete_tasks,
    json_text,
    json_value,
    read_page,
)

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS chains (
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
    )""",
    "CREATE INDEX IF NOT EXISTS chains_status ON chains (status, seq)",
    # Retention reads finished chains by age.
    "CREATE INDEX IF NOT EXISTS chains_finished ON chains (finished_at) "
    "WHERE finished_at IS NOT NULL",
    """CREATE TABLE IF NOT EXISTS chain_steps (
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
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS chain_definitions (
        name TEXT PRIMARY KEY,
        spec TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    )""",
)

# Chain columns a status change may set besides status.
SETTABLE = frozenset({"finished_at", "error", "result", "restarts"})

_CHAIN_COLUMNS = (
    "seq, id, name, definition, spec, parameters, status, created_at, finished_at, error, "
    "result, restarts"
)


class ChainStore(Protocol):
    """What the chain runner needs from storage; a PostgreSQL store can implement it too."""

    async def open(self) -> None:
        """Create the chain tables if they are missing."""

    async def create(self, chain: ChainRecord, steps: Sequence[StepRecord]) -> None:
        """Insert a chain and its steps in one transaction."""

    async def create_with_key(
        self, chain: ChainRecord, steps: Sequence[StepRecord], key: IdempotencyRecord
    ) -> IdempotencyRecord | None:
        """As :meth:`create`, remembering ``key`` in the same transaction; unless the principal
        already holds an unexpired ``key``: then nothing is written and its record returned."""

    async def get(self, chain_id: str) -> ChainRecord | None: ...

    async def steps(self, chain_id: str) -> list[StepRecord]:
        """The chain's steps in definition order."""

    async def list_chains(
        self,
        *,
        status: Status | None = None,
        limit: int = 100,
        cursor: int | None = None,
        descending: bool = False,
    ) -> ChainPage: ...

    async def ids_with_status(self, statuses: Sequence[Status]) -> list[str]: ...

    async def active_tasks_of(self, statuses: Sequence[Status]) -> list[tuple[str, str]]:
        """(chain id, task id) of unfinished tasks whose chain is in one of ``statuses``."""

    async def save_steps(self, steps: Sequence[StepRecord]) -> None:
        """Write the steps' state, task id, error, timing and history (one transaction)."""

    async def set_status(
        self,
        chain_id: str,
        expected: Sequence[Status],
        new: Status,
        *,
        fields: dict[str, Any] | None = None,
        steps: Sequence[StepRecord] = (),
    ) -> bool:
        """Compare-and-set the chain's status (and ``fields``), saving ``steps`` in the same
        transaction; returns whether it changed (nothing is written when it did not)."""

    async def put_definition(self, record: DefinitionRecord) -> bool:
        """Insert or replace a named definition; returns whether it is new."""

    async def get_definition(self, name: str) -> DefinitionRecord | None: ...

    async def list_definitions(self) -> list[DefinitionRecord]: ...

    async def delete_definition(self, name: str) -> bool: ...

    async def prune_finished(self, before: float, limit: int) -> int:
        """Delete at most ``limit`` finished chains that finished before ``before``, with their
        steps and their tasks (and the tasks' logs and attempts); returns how many chains went.
        A chain with a task still unfinished is kept, and so is every unfinished chain."""

    async def count_prunable(self, before: float) -> int:
        """How many chains :meth:`prune_finished` would delete without a limit."""


def _row_to_chain(row: tuple[Any, ...]) -> ChainRecord:
    return ChainRecord(
        seq=row[0],
        id=row[1],
        name=row[2],
        definition=row[3],
        spec=orjson.loads(row[4]),
        parameters=orjson.loads(row[5]),
        status=Status(row[6]),
        created_at=row[7],
        finished_at=row[8],
        error=row[9],
        result=json_value(row[10]),
        restarts=row[11],
    )


def _step_params(step: StepRecord) -> tuple[Any, ...]:
    return (
        step.state,
        step.task_id,
        step.error,
        step.decided_at,
        step.rerun_attempt,
        json_text(step.history),
        step.chain_id,
        step.name,
    )


_SAVE_STEP = (
    "UPDATE chain_steps SET state = ?, task_id = ?, error = ?, decided_at = ?, "
    "rerun_attempt = ?, history = ? WHERE chain_id = ? AND name = ?"
)


class SqliteChainStore:
    """Chains in the SQLite file of a :class:`SqliteStore`, through its writer and reader."""

    def __init__(self, tasks: SqliteStore) -> None:
        self._tasks = tasks

    async def _write(self, op: Any) -> Any:
        # The task store's group commit: op(conn) runs inside its batch transaction.
        return await self._tasks._submit(op)

    @property
    def _r(self) -> sqlite3.Connection:
        return self._tasks._r

    async def open(self) -> None:
        def op(conn: sqlite3.Connection) -> None:
            for statement in SCHEMA:
                conn.execute(statement)

        await self._write(op)

    # -- chains ---------------------------------------------------------------------------------
    async def create(self, chain: ChainRecord, steps: Sequence[StepRecord]) -> None:
        await self._write(self._create_op(chain, steps))

    async def create_with_key(
        self, chain: ChainRecord, steps: Sequence[StepRecord], key: IdempotencyRecord
    ) -> IdempotencyRecord | None:
        create = self._create_op(chain, steps)

        def op(conn: sqlite3.Connection) -> IdempotencyRecord | None:
            existing = claim_key(conn, key)
            if existing is None:
                create(conn)
            return existing

        found: IdempotencyRecord | None = await self._write(op)
        return found

    @staticmethod
    def _create_op(
        chain: ChainRecord, steps: Sequence[StepRecord]
    ) -> Callable[[sqlite3.Connection], None]:
        chain_row = (
            chain.id,
            chain.name,
            chain.definition,
            json_text(chain.spec),
            json_text(chain.parameters),
            chain.status.value,
            chain.created_at,
            chain.restarts,
        )
        step_rows = [
            (s.chain_id, s.name, s.position, s.state, s.task_id, json_text(s.history))
            for s in steps
        ]

        def op(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO chains (id, name, definition, spec, parameters, status, created_at, "
                "restarts) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                chain_row,
            )
            conn.executemany(
                "INSERT INTO chain_steps (chain_id, name, position, state, task_id, history) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                step_rows,
            )

        return op

    async def get(self, chain_id: str) -> ChainRecord | None:
        row = self._r.execute(
            f"SELECT {_CHAIN_COLUMNS} FROM chains WHERE id = ?", (chain_id,)
        ).fetchone()
        return None if row is None else _row_to_chain(row)

    async def steps(self, chain_id: str) -> list[StepRecord]:
        rows = self._r.execute(
            "SELECT name, position, state, task_id, error, decided_at, rerun_attempt, history "
            "FROM chain_steps WHERE chain_id = ? ORDER BY position",
            (chain_id,),
        ).fetchall()
        return [
            StepRecord(
                chain_id=chain_id,
                name=r[0],
                position=r[1],
                state=r[2],
                task_id=r[3],
                error=r[4],
                decided_at=r[5],
                rerun_attempt=r[6],
                history=orjson.loads(r[7]),
            )
            for r in rows
        ]

    async def list_chains(
        self,
        *,
        status: Status | None = None,
        limit: int = 100,
        cursor: int | None = None,
        descending: bool = False,
    ) -> ChainPage:
        filters = {"status": None if status is None else status.value}
        rows, next_cursor = read_page(
            self._r, f"SELECT {_CHAIN_COLUMNS} FROM chains", filters, limit, cursor, descending
        )
        return ChainPage([_row_to_chain(r) for r in rows], next_cursor)

    async def ids_with_status(self, statuses: Sequence[Status]) -> list[str]:
        marks = ", ".join("?" * len(statuses))
        rows = self._r.execute(
            f"SELECT id FROM chains WHERE status IN ({marks}) ORDER BY seq",
            [s.value for s in statuses],
        ).fetchall()
        return [r[0] for r in rows]

    async def active_tasks_of(self, statuses: Sequence[Status]) -> list[tuple[str, str]]:
        # From the few unfinished tasks (indexed by status) to their chains, not the other way.
        task_marks = ", ".join("?" * len(ACTIVE))
        chain_marks = ", ".join("?" * len(statuses))
        rows = self._r.execute(
            f"SELECT t.chain_id, t.id FROM tasks t JOIN chains c ON c.id = t.chain_id "
            f"WHERE t.status IN ({task_marks}) AND t.chain_id IS NOT NULL "
            f"AND c.status IN ({chain_marks}) ORDER BY t.seq",
            [*(s.value for s in ACTIVE), *(s.value for s in statuses)],
        ).fetchall()
        return [(r[0], r[1]) for r in rows]

    async def save_steps(self, steps: Sequence[StepRecord]) -> None:
        rows = [_step_params(s) for s in steps]
        if not rows:
            return

        def op(conn: sqlite3.Connection) -> None:
            conn.executemany(_SAVE_STEP, rows)

        await self._write(op)

    async def set_status(
        self,
        chain_id: str,
        expected: Sequence[Status],
        new: Status,
        *,
        fields: dict[str, Any] | None = None,
        steps: Sequence[StepRecord] = (),
    ) -> bool:
        fields = dict(fields or {})
        unknown = set(fields) - SETTABLE
        if unknown:
            raise ValueError(f"not settable: {sorted(unknown)}")
        sets = ["status = ?"]
        params: list[Any] = [new.value]
        for name, value in fields.items():
            sets.append(f"{name} = ?")
            params.append(json_text(value) if name == "result" and value is not None else value)
        marks = ", ".join("?" * len(expected))
        sql = f"UPDATE chains SET {', '.join(sets)} WHERE id = ? AND status IN ({marks})"
        all_params = (*params, chain_id, *(s.value for s in expected))
        step_rows = [_step_params(s) for s in steps]

        def op(conn: sqlite3.Connection) -> bool:
            if conn.execute(sql, all_params).rowcount == 0:
                return False
            conn.executemany(_SAVE_STEP, step_rows)
            return True

        changed: bool = await self._write(op)
        return changed

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

        created: bool = await self._write(op)
        return created

    async def get_definition(self, name: str) -> DefinitionRecord | None:
        row = self._r.execute(
            "SELECT name, spec, created_at, updated_at FROM chain_definitions WHERE name = ?",
            (name,),
        ).fetchone()
        return None if row is None else DefinitionRecord(row[0], orjson.loads(row[1]), *row[2:])

    async def list_definitions(self) -> list[DefinitionRecord]:
        rows = self._r.execute(
            "SELECT name, spec, created_at, updated_at FROM chain_definitions ORDER BY name"
        ).fetchall()
        return [DefinitionRecord(r[0], orjson.loads(r[1]), r[2], r[3]) for r in rows]

    async def delete_definition(self, name: str) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            deleted: bool = (
                conn.execute("DELETE FROM chain_definitions WHERE name = ?", (name,)).rowcount > 0
            )
            return deleted

        deleted: bool = await self._write(op)
        return deleted

    # -- retention ------------------------------------------------------------------------------
    async def prune_finished(self, before: float, limit: int) -> int:
        where, params = _prunable_chains(before)

        def op(conn: sqlite3.Connection) -> int:
            ids = [r[0] for r in conn.execute(f"SELECT c.id {where} LIMIT ?", (*params, limit))]
            for chain_id in ids:
                task_ids = [
                    r[0]
                    for r in conn.execute("SELECT id FROM tasks WHERE chain_id = ?", (chain_id,))
                ]
                delete_tasks(conn, task_ids)
                conn.execute("DELETE FROM chain_steps WHERE chain_id = ?", (chain_id,))
                conn.execute("DELETE FROM chains WHERE id = ?", (chain_id,))
            return len(ids)

        pruned: int = await self._write(op)
        return pruned

    async def count_prunable(self, before: float) -> int:
        where, params = _prunable_chains(before)
        count: int = self._r.execute(f"SELECT count(*) {where}", params).fetchone()[0]
        return count


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


def chain_store_for(store: Any) -> ChainStore | None:
    """The chain store that goes with a task store, or None when it has none yet."""
    if isinstance(store, SqliteStore):
        return SqliteChainStore(store)
    factory = getattr(store, "chain_store", None)
    if callable(factory):
        found: ChainStore = factory()
        return found
    return None
