"""The ChainStore contract: what the chain runner needs from storage.

Every store keeps its chains in the same place as its tasks and writes them through the same
writer (``Store.chains``), so a chain's state and its tasks share one durability story: whatever
the API acknowledged survives ``kill -9``. Each method is one transaction, which is what makes
the runner crash-safe (for instance, a chain's status and its steps' states change together on
cancel and restart).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from tasky.states import Status
from tasky.store.chain_records import ChainPage, ChainRecord, DefinitionRecord, StepRecord
from tasky.store.records import IdempotencyRecord

# Chain fields a status change may set besides the status.
CHAIN_SETTABLE = frozenset({"finished_at", "error", "result", "restarts"})


class ChainStore(Protocol):
    async def create(self, chain: ChainRecord, steps: Sequence[StepRecord]) -> None:
        """Insert a chain and its steps in one transaction (a duplicate id raises and writes
        nothing)."""

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

    async def ids_with_status(self, statuses: Sequence[Status]) -> list[str]:
        """Ids of the chains in ``statuses``, oldest first."""

    async def active_tasks_of(self, statuses: Sequence[Status]) -> list[tuple[str, str]]:
        """(chain id, task id) of unfinished tasks whose chain is in one of ``statuses``, in
        task submit order."""

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
        """Compare-and-set the chain's status (and ``fields``, keys of :data:`CHAIN_SETTABLE`;
        any other raises ValueError), saving ``steps`` in the same transaction; returns whether
        it changed (nothing is written when it did not)."""

    async def put_definition(self, record: DefinitionRecord) -> bool:
        """Insert or replace a named definition (a replaced one keeps its ``created_at``);
        returns whether it is new."""

    async def get_definition(self, name: str) -> DefinitionRecord | None: ...

    async def list_definitions(self) -> list[DefinitionRecord]:
        """Every stored definition, by name."""

    async def delete_definition(self, name: str) -> bool: ...

    async def prune_finished(self, before: float, limit: int) -> int:
        """Delete at most ``limit`` finished chains that finished before ``before``, with their
        steps and their tasks (and the tasks' logs and attempts); returns how many chains went.
        A chain with a task still unfinished is kept, and so is every unfinished chain. The
        tasks' statistics keep counting them (as :meth:`Store.prune_finished`)."""

    async def count_prunable(self, before: float) -> int:
        """How many chains :meth:`prune_finished` would delete without a limit."""
