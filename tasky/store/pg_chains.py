"""Chains in the PostgreSQL store: their tables live in the task store's database and are
written through its pool, each method one transaction (see tasky.store.chain_base)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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
from tasky.store.pg_database import (
    Conn,
    PgDatabase,
    Row,
    clean,
    json_text,
    json_value,
    read_page,
)
from tasky.store.pg_records import claim_key
from tasky.store.records import Claim, IdempotencyRecord, TaskRecord
from tasky.store.sql_chain_moves import SqlChainMoves
from tasky.store.sql_rows import (
    CHAIN_COLUMNS,
    CHAIN_SUMMARY_COLUMNS,
    STEP_COLUMNS,
    chain_values,
    row_to_chain,
    row_to_step,
    step_saved,
    step_values,
)

_INSERT_CHAIN = (
    "INSERT INTO chains (id, name, definition, spec, parameters, status, created_at, "
    "finished_at, error, result, restarts) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
_INSERT_STEP = (
    "INSERT INTO chain_steps (chain_id, name, position, state, task_id, error, decided_at, "
    "rerun_attempt, history) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
# One statement: the chain's row is locked FOR SHARE, so a cancel or pause (which updates it)
# waits for the claim or makes it claim nothing; a step's id is set only while it has none, so
# of two racing claims of one step the second (which waits for the first's row lock, then
# re-checks) finds it taken.
_CLAIM_STEPS = (
    "WITH running AS (SELECT id FROM chains WHERE id = %s AND status = 'Running' FOR SHARE), "
    "wanted AS (SELECT * FROM unnest(%s::text[], %s::text[]) AS w(name, task_id)) "
    "UPDATE chain_steps s SET task_id = w.task_id "
    "FROM wanted w, running r WHERE s.chain_id = r.id AND s.name = w.name "
    "AND s.state = 'pending' AND s.task_id IS NULL RETURNING s.name"
)
_SAVE_STEP = (
    "UPDATE chain_steps SET state = %s, task_id = %s, error = %s, decided_at = %s, "
    "rerun_attempt = %s, history = %s WHERE chain_id = %s AND name = %s"
)
_ACTIVE = ", ".join(f"'{s.value}'" for s in sorted(ACTIVE))
_FINISHED = ", ".join(f"'{s.value}'" for s in sorted(FINISHED))
# Finished chains by age (chains_finished), none of whose tasks is unfinished.
# At most %s of one chain's tasks, with their logs, attempts and remembered children; the
# statistics are kept beside the tasks, so they keep counting them.
_DELETE_CHAIN_TASKS = (
    "WITH tasks_gone AS (DELETE FROM tasks WHERE id IN "
    "(SELECT id FROM tasks WHERE chain_id = %s LIMIT %s) RETURNING id), "
    "logs AS (DELETE FROM task_logs WHERE task_id IN (SELECT id FROM tasks_gone)), "
    "attempts AS (DELETE FROM task_attempts WHERE task_id IN (SELECT id FROM tasks_gone)), "
    "children AS (DELETE FROM task_children WHERE task_id IN (SELECT id FROM tasks_gone)) "
    "SELECT count(*) FROM tasks_gone"
)

_PRUNABLE = (
    "FROM chains c WHERE c.finished_at IS NOT NULL AND c.finished_at < %s "
    f"AND c.status IN ({_FINISHED}) AND NOT EXISTS (SELECT 1 FROM tasks t "
    f"WHERE t.chain_id = c.id AND t.status IN ({_ACTIVE}))"
)


class PgChainStore(SqlChainMoves):
    """Chains of a :class:`tasky.store.postgres.PostgresStore` (``store.chains``)."""

    _mark = "%s"
    _text = staticmethod(clean)

    # Its task writes and chain writes do not share a transaction here (see advance).
    advances = False

    def __init__(self, db: PgDatabase) -> None:
        self._db = db

    # -- chains ---------------------------------------------------------------------------------
    async def create(self, chain: ChainRecord, steps: Sequence[StepRecord]) -> None:
        await self._db.write(lambda conn: _create(conn, chain, steps), transaction=True)

    async def create_with_key(
        self, chain: ChainRecord, steps: Sequence[StepRecord], key: IdempotencyRecord
    ) -> IdempotencyRecord | None:
        async def op(conn: Conn) -> IdempotencyRecord | None:
            existing = await claim_key(conn, key)
            if existing is None:
                await _create(conn, chain, steps)
            return existing

        return await self._db.write(op, transaction=True)

    async def get(self, chain_id: str) -> ChainRecord | None:
        row = await self._db.fetch_one(
            f"SELECT {CHAIN_COLUMNS} FROM chains WHERE id = %s", (chain_id,)
        )
        return None if row is None else row_to_chain(row)

    async def state(self, chain_id: str) -> ChainState | None:
        row = await self._db.fetch_one(
            "SELECT status, restarts FROM chains WHERE id = %s", (chain_id,)
        )
        return None if row is None else ChainState(Status(row[0]), row[1])

    async def steps(self, chain_id: str) -> list[StepRecord]:
        rows = await self._db.fetch_all(
            f"SELECT {STEP_COLUMNS} FROM chain_steps WHERE chain_id = %s ORDER BY position",
            (chain_id,),
        )
        return [row_to_step(chain_id, r) for r in rows]

    async def steps_page(
        self, chain_id: str, *, after: int | None = None, limit: int = 100
    ) -> list[StepRecord]:
        rows = await self._db.fetch_all(
            f"SELECT {STEP_COLUMNS} FROM chain_steps WHERE chain_id = %s AND position > %s "
            "ORDER BY position LIMIT %s",
            (chain_id, -1 if after is None else after, limit),
        )
        return [row_to_step(chain_id, r) for r in rows]

    async def step_counts(self, chain_id: str) -> dict[str, int]:
        rows = await self._db.fetch_all(
            "SELECT s.state, s.rerun_attempt, t.status, t.attempt, count(*) FROM chain_steps s "
            "LEFT JOIN tasks t ON t.id = s.task_id WHERE s.chain_id = %s "
            "GROUP BY s.state, s.rerun_attempt, t.status, t.attempt",
            (chain_id,),
        )
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
        rows, next_cursor = await read_page(self._db, select, filters, limit, cursor, descending)
        return ChainPage([row_to_chain(r) for r in rows], next_cursor)

    async def ids_with_status(self, statuses: Sequence[Status]) -> list[str]:
        rows = await self._db.fetch_all(
            "SELECT id FROM chains WHERE status = ANY(%s) ORDER BY seq",
            ([s.value for s in statuses],),
        )
        return [r[0] for r in rows]

    async def active_tasks_of(self, statuses: Sequence[Status]) -> list[tuple[str, str]]:
        # From the few unfinished tasks (indexed by status) to their chains, not the other way.
        rows = await self._db.fetch_all(
            "SELECT t.chain_id, t.id FROM tasks t JOIN chains c ON c.id = t.chain_id "
            f"WHERE t.status IN ({_ACTIVE}) AND t.chain_id IS NOT NULL "
            "AND c.status = ANY(%s) ORDER BY t.seq",
            ([s.value for s in statuses],),
        )
        return [(r[0], r[1]) for r in rows]

    async def save_steps(self, steps: Sequence[StepRecord]) -> None:
        rows = [step_saved(s, clean) for s in steps]
        if not rows:
            return

        async def op(conn: Conn) -> None:
            async with conn.cursor() as cursor:
                await cursor.executemany(_SAVE_STEP, rows)

        await self._db.write(op, size=len(rows), transaction=True)

    async def claim_steps(self, chain_id: str, claims: Sequence[tuple[str, str]]) -> list[str]:
        names = [name for name, _ in claims]
        task_ids = [task_id for _, task_id in claims]
        if not names:
            return []

        async def op(conn: Conn) -> list[Row]:
            cursor = await conn.execute(_CLAIM_STEPS, (chain_id, names, task_ids))
            return await cursor.fetchall()

        rows = await self._db.write(op, size=len(names))
        claimed = {r[0] for r in rows}
        return [name for name in names if name in claimed]

    async def advance(
        self, advance: StepAdvance, task: TaskRecord, claim: Claim | None
    ) -> tuple[TaskRecord, list[str]] | None:
        return None  # the runner advances the chain after the finish commits

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
        columns ``sets`` assigns (from ``params``) and ``steps`` saved in the same transaction.
        The update locks the chain's row: of racing moves one wins, the others re-check the
        status it left."""
        assignments = ", ".join(filter(None, ["status = %s", sets]))
        query = f"UPDATE chains SET {assignments} WHERE id = %s AND status = ANY(%s)"
        sources = [s.value for s in CHAIN_MOVES[move].sources]
        all_params = (new.value, *params, chain_id, sources)
        step_rows = [step_saved(s, clean) for s in steps]

        async def op(conn: Conn) -> bool:
            if (await conn.execute(query, all_params)).rowcount == 0:
                return False
            if step_rows:
                async with conn.cursor() as cursor:
                    await cursor.executemany(_SAVE_STEP, step_rows)
            return True

        if not step_rows:  # one statement: its own transaction
            return await self._db.execute(query, all_params) == 1
        return await self._db.write(op, transaction=True)

    # -- named definitions ----------------------------------------------------------------------
    async def put_definition(self, record: DefinitionRecord) -> bool:
        # xmax = 0 only on a row this statement inserted (an update leaves the old version's id).
        inserted: bool = await self._db.write(
            lambda conn: _returning_one(
                conn,
                "INSERT INTO chain_definitions (name, spec, created_at, updated_at) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, "
                "updated_at = excluded.updated_at RETURNING xmax = 0",
                (record.name, json_text(record.spec), record.created_at, record.updated_at),
            )
        )
        return inserted

    async def get_definition(self, name: str) -> DefinitionRecord | None:
        row = await self._db.fetch_one(
            "SELECT name, spec, created_at, updated_at FROM chain_definitions WHERE name = %s",
            (name,),
        )
        return None if row is None else DefinitionRecord(row[0], json_value(row[1]), *row[2:])

    async def list_definitions(self) -> list[DefinitionRecord]:
        rows = await self._db.fetch_all(
            "SELECT name, spec, created_at, updated_at FROM chain_definitions ORDER BY name"
        )
        return [DefinitionRecord(r[0], json_value(r[1]), r[2], r[3]) for r in rows]

    async def delete_definition(self, name: str) -> bool:
        return await self._db.execute("DELETE FROM chain_definitions WHERE name = %s", (name,)) > 0

    # -- retention ------------------------------------------------------------------------------
    async def prune_finished(self, before: float, limit: int) -> ChainPruned:
        async def op(conn: Conn) -> ChainPruned:
            # Every chain costs at least its own row, so ``limit`` chains are all one write
            # uses; SKIP LOCKED leaves the chains another node is pruning to it.
            found = await conn.execute(
                f"SELECT c.id {_PRUNABLE} ORDER BY c.finished_at LIMIT %s "
                "FOR UPDATE OF c SKIP LOCKED",
                (before, limit),
            )
            ids = [r[0] for r in await found.fetchall()]
            budget, tasks, steps, chains = limit, 0, 0, 0
            for chain_id in ids:
                cursor = await conn.execute(_DELETE_CHAIN_TASKS, (chain_id, budget))
                row = await cursor.fetchone()
                taken = 0 if row is None else int(row[0])
                tasks += taken
                budget -= taken
                if budget <= 0:
                    break
                cursor = await conn.execute(
                    "DELETE FROM chain_steps WHERE chain_id = %s AND name IN "
                    "(SELECT name FROM chain_steps WHERE chain_id = %s LIMIT %s)",
                    (chain_id, chain_id, budget),
                )
                gone = max(cursor.rowcount, 0)
                steps += gone
                budget -= gone
                if budget <= 0:
                    break
                await conn.execute("DELETE FROM chains WHERE id = %s", (chain_id,))
                chains += 1
                budget -= 1
                if budget <= 0:
                    break
            return ChainPruned(tasks, steps, chains)

        return await self._db.write(op, transaction=True)

    async def count_prunable(self, before: float) -> int:
        count: int = await self._db.fetch_value(f"SELECT count(*) {_PRUNABLE}", (before,))
        return count


async def _create(conn: Conn, chain: ChainRecord, steps: Sequence[StepRecord]) -> None:
    await conn.execute(_INSERT_CHAIN, chain_values(chain, clean))
    if steps:
        async with conn.cursor() as cursor:
            await cursor.executemany(_INSERT_STEP, [step_values(s, clean) for s in steps])


async def _returning_one(conn: Conn, query: str, params: Sequence[Any]) -> Any:
    row = await (await conn.execute(query, params)).fetchone()
    return None if row is None else row[0]
