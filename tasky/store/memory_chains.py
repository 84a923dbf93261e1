"""Chains in the in-memory store (``MemoryStore.chains``), beside its tasks in one
:class:`MemoryData`, with the semantics of tasky.store.sqlite_chains."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from tasky.states import ACTIVE, CHAIN_MOVES, FINISHED, Status
from tasky.store.base import DuplicateId
from tasky.store.chain_records import (
    ChainPage,
    ChainPruned,
    ChainRecord,
    ChainState,
    DefinitionRecord,
    StepAdvance,
    StepRecord,
    step_status,
)
from tasky.store.memory_data import MemoryData, copy_chain, copy_step, json_copy, page
from tasky.store.records import Claim, IdempotencyRecord, TaskRecord


class MemoryChainStore:
    # Its task writes and chain writes do not share a transaction here (see advance).
    advances = False

    def __init__(self, data: MemoryData) -> None:
        self._data = data

    # -- chains -----------------------------------------------------------------------------------
    async def create(self, chain: ChainRecord, steps: Sequence[StepRecord]) -> None:
        new, new_steps = copy_chain(chain), [copy_step(s) for s in steps]
        await self._data.write(lambda: self._add(new, new_steps))

    async def create_with_key(
        self, chain: ChainRecord, steps: Sequence[StepRecord], key: IdempotencyRecord
    ) -> IdempotencyRecord | None:
        new, new_steps = copy_chain(chain), [copy_step(s) for s in steps]

        def op() -> IdempotencyRecord | None:
            existing = self._data.unexpired_key(key)
            if existing is not None:
                return existing
            self._add(new, new_steps)
            self._data.remember_key(key)
            return None

        return await self._data.write(op)

    def _add(self, chain: ChainRecord, steps: Sequence[StepRecord]) -> None:
        """Inside a write: the chain and its steps (copies the caller made), or nothing when
        an id or a step name is taken."""
        names = [(s.chain_id, s.name) for s in steps]
        if chain.id in self._data.chains or len(set(names)) < len(names):
            raise DuplicateId(f"chain {chain.id} or one of its step names is taken")
        if any(
            s.chain_id in self._data.steps and s.name in self._data.steps[s.chain_id] for s in steps
        ):
            raise DuplicateId(f"a step of chain {chain.id} exists already")
        self._data.chain_seq += 1
        chain.seq = self._data.chain_seq
        self._data.chains[chain.id] = chain
        for step in steps:
            self._data.steps.setdefault(step.chain_id, {})[step.name] = step

    async def get(self, chain_id: str) -> ChainRecord | None:
        found = self._data.chains.get(chain_id)
        return None if found is None else copy_chain(found)

    async def state(self, chain_id: str) -> ChainState | None:
        found = self._data.chains.get(chain_id)
        return None if found is None else ChainState(found.status, found.restarts)

    async def steps(self, chain_id: str) -> list[StepRecord]:
        kept = self._data.steps.get(chain_id, {}).values()
        return [copy_step(s) for s in sorted(kept, key=_position)]

    async def steps_page(
        self, chain_id: str, *, after: int | None = None, limit: int = 100
    ) -> list[StepRecord]:
        kept = self._data.steps.get(chain_id, {}).values()
        chosen = sorted((s for s in kept if after is None or s.position > after), key=_position)
        return [copy_step(s) for s in chosen[:limit]]

    async def step_counts(self, chain_id: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        tasks = self._data.tasks
        for step in self._data.steps.get(chain_id, {}).values():
            task = tasks.get(step.task_id) if step.task_id is not None else None
            status = step_status(
                step.state,
                step.rerun_attempt,
                None if task is None else task.status.value,
                None if task is None else task.attempt,
            )
            counts[status] = counts.get(status, 0) + 1
        return counts

    async def list_chains(
        self,
        *,
        status: Status | None = None,
        limit: int = 100,
        cursor: int | None = None,
        descending: bool = False,
    ) -> ChainPage:
        rows = [c for c in self._data.chains.values() if status is None or c.status is status]
        chosen, next_cursor = page(rows, _seq, limit, cursor, descending)
        summaries = [replace(c, spec={}, parameters={}, result=None) for c in chosen]
        return ChainPage(summaries, next_cursor)

    async def ids_with_status(self, statuses: Sequence[Status]) -> list[str]:
        return [c.id for c in self._data.chains.values() if c.status in statuses]

    async def active_tasks_of(self, statuses: Sequence[Status]) -> list[tuple[str, str]]:
        chains = self._data.chains
        return [
            (t.chain_id, t.id)
            for t in self._data.tasks.values()
            if t.status in ACTIVE
            and t.chain_id is not None
            and t.chain_id in chains
            and chains[t.chain_id].status in statuses
        ]

    async def save_steps(self, steps: Sequence[StepRecord]) -> None:
        if steps:
            await self._data.write(lambda: self._save(steps))

    def _save(self, steps: Sequence[StepRecord]) -> None:
        """Update the steps that exist (as an UPDATE would: unknown ones are left out)."""
        for step in steps:
            kept = self._data.steps.get(step.chain_id, {}).get(step.name)
            if kept is not None:
                kept.state, kept.task_id, kept.error = step.state, step.task_id, step.error
                kept.decided_at, kept.rerun_attempt = step.decided_at, step.rerun_attempt
                kept.history = list(step.history)

    async def claim_steps(self, chain_id: str, claims: Sequence[tuple[str, str]]) -> list[str]:
        wanted = list(claims)

        def op() -> list[str]:
            chain = self._data.chains.get(chain_id)
            if chain is None or chain.status is not Status.RUNNING:
                return []
            kept = self._data.steps.get(chain_id, {})
            claimed = []
            for name, task_id in wanted:
                step = kept.get(name)
                if step is not None and step.state == "pending" and step.task_id is None:
                    step.task_id = task_id
                    claimed.append(name)
            return claimed

        return await self._data.write(op)

    async def advance(
        self, advance: StepAdvance, task: TaskRecord, claim: Claim | None
    ) -> tuple[TaskRecord, list[str]] | None:
        return None  # the runner advances the chain after the finish commits

    # -- status moves -----------------------------------------------------------------------------
    async def finish_chain(
        self,
        chain_id: str,
        status: Status,
        at: float,
        *,
        error: str | None = None,
        result: Any = None,
        steps: Sequence[StepRecord] = (),
    ) -> bool:
        if status not in CHAIN_MOVES["finish"].targets:
            raise ValueError(f"a chain cannot finish as {status}")
        kept = json_copy(result)
        return await self._move(
            chain_id,
            "finish",
            lambda c: replace(c, status=status, finished_at=at, error=error, result=kept),
            steps,
        )

    async def cancel_chain(
        self, chain_id: str, at: float, reason: str, *, steps: Sequence[StepRecord] = ()
    ) -> bool:
        return await self._move(
            chain_id,
            "cancel",
            lambda c: replace(c, status=Status.CANCELED, finished_at=at, error=reason),
            steps,
        )

    async def pause_chain(self, chain_id: str) -> bool:
        return await self._move(chain_id, "pause", lambda c: replace(c, status=Status.PAUSED))

    async def resume_chain(self, chain_id: str) -> bool:
        return await self._move(chain_id, "resume", lambda c: replace(c, status=Status.RUNNING))

    async def restart_chain(self, chain_id: str, *, steps: Sequence[StepRecord] = ()) -> bool:
        def restarted(chain: ChainRecord) -> ChainRecord:
            return replace(
                chain,
                status=Status.RUNNING,
                finished_at=None,
                error=None,
                result=None,
                restarts=chain.restarts + 1,
            )

        return await self._move(chain_id, "restart", restarted, steps)

    async def _move(
        self,
        chain_id: str,
        move: str,
        change: Callable[[ChainRecord], ChainRecord],
        steps: Sequence[StepRecord] = (),
    ) -> bool:
        """Compare-and-set: ``change`` the chain when it is in one of ``CHAIN_MOVES[move]``'s
        sources, saving ``steps`` in the same write."""
        sources = CHAIN_MOVES[move].sources
        saved = [copy_step(s) for s in steps]  # as passed, like a statement's parameters

        def op() -> bool:
            chain = self._data.chains.get(chain_id)
            if chain is None or chain.status not in sources:
                return False
            self._data.chains[chain_id] = change(chain)
            self._save(saved)
            return True

        return await self._data.write(op)

    # -- named definitions ------------------------------------------------------------------------
    async def put_definition(self, record: DefinitionRecord) -> bool:
        def op() -> bool:
            old = self._data.definitions.get(record.name)
            created_at = record.created_at if old is None else old.created_at
            self._data.definitions[record.name] = replace(
                record, spec=json_copy(record.spec), created_at=created_at
            )
            return old is None

        return await self._data.write(op)

    async def get_definition(self, name: str) -> DefinitionRecord | None:
        found = self._data.definitions.get(name)
        return None if found is None else replace(found, spec=json_copy(found.spec))

    async def list_definitions(self) -> list[DefinitionRecord]:
        return [
            replace(d, spec=json_copy(d.spec)) for _, d in sorted(self._data.definitions.items())
        ]

    async def delete_definition(self, name: str) -> bool:
        return await self._data.write(lambda: self._data.definitions.pop(name, None) is not None)

    # -- retention --------------------------------------------------------------------------------
    async def prune_finished(self, before: float, limit: int) -> ChainPruned:
        def op() -> ChainPruned:
            budget, tasks, steps, chains = limit, 0, 0, 0
            for chain_id in self._prunable(before)[:limit]:
                task_ids = self._data.tasks_of_chain(chain_id)[:budget]
                tasks += self._data.delete_tasks(task_ids)
                budget -= len(task_ids)
                if budget <= 0:
                    break
                kept = self._data.steps.get(chain_id, {})
                for name in list(kept)[:budget]:
                    del kept[name]
                    steps += 1
                    budget -= 1
                if budget <= 0:
                    break
                self._data.steps.pop(chain_id, None)
                del self._data.chains[chain_id]
                chains += 1
                budget -= 1
                if budget <= 0:
                    break
            return ChainPruned(tasks, steps, chains)

        return await self._data.write(op)

    async def count_prunable(self, before: float) -> int:
        return len(self._prunable(before))

    def _prunable(self, before: float) -> list[str]:
        """Finished chains that finished before ``before`` and have no unfinished task, oldest
        first."""
        busy = {
            t.chain_id
            for t in self._data.tasks.values()
            if t.chain_id is not None and t.status in ACTIVE
        }
        found = [
            c
            for c in self._data.chains.values()
            if c.status in FINISHED
            and c.finished_at is not None
            and c.finished_at < before
            and c.id not in busy
        ]
        found.sort(key=lambda c: (c.finished_at, c.seq))
        return [c.id for c in found]


def _seq(chain: ChainRecord) -> int:
    return chain.seq


def _position(step: StepRecord) -> int:
    return step.position
