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
from tasky.store.chain_records import (
    ChainPage,
    ChainPruned,
    ChainRecord,
    ChainState,
    DefinitionRecord,
    StepAdvance,
    StepRecord,
)
from tasky.store.records import Claim, IdempotencyRecord, TaskRecord


class ChainStore(Protocol):
    # Whether :meth:`advance` can write in the transaction of the task's finish (else it writes
    # nothing and returns None, and the runner advances the chain after the finish commits).
    advances: bool

    async def create(self, chain: ChainRecord, steps: Sequence[StepRecord]) -> None:
        """Insert a chain and its steps in one transaction (a duplicate id raises and writes
        nothing)."""

    async def create_with_key(
        self, chain: ChainRecord, steps: Sequence[StepRecord], key: IdempotencyRecord
    ) -> IdempotencyRecord | None:
        """As :meth:`create`, remembering ``key`` in the same transaction; unless the principal
        already holds an unexpired ``key``: then nothing is written and its record returned."""

    async def get(self, chain_id: str) -> ChainRecord | None: ...

    async def state(self, chain_id: str) -> ChainState | None:
        """The chain's status and restart count, without its definition (read on every step
        of a long chain, so it must not cost more for a longer one)."""

    async def steps(self, chain_id: str) -> list[StepRecord]:
        """The chain's steps in definition order."""

    async def steps_page(
        self, chain_id: str, *, after: int | None = None, limit: int = 100
    ) -> list[StepRecord]:
        """At most ``limit`` of the chain's steps in definition order, those whose position is
        greater than ``after`` (None: from the first)."""

    async def step_counts(self, chain_id: str) -> dict[str, int]:
        """How many of the chain's steps are in each status, as the chain shows them (see
        tasky.chains.plan.StepView.status): Pending, Skipped, Failed and Canceled without a
        task; a recorded step whose task does not exist (yet) is Pending; a step a restart
        re-runs is Queued until its task's next attempt exists; else its task's status.
        Statuses with no step are left out."""

    async def list_chains(
        self,
        *,
        status: Status | None = None,
        limit: int = 100,
        cursor: int | None = None,
        descending: bool = False,
    ) -> ChainPage:
        """A page of chains as the list shows them: without their definition, parameters and
        result (``spec`` and ``parameters`` empty, ``result`` None), so a page of long chains
        costs what a page of short ones does (``get`` reads a chain whole)."""

    async def ids_with_status(self, statuses: Sequence[Status]) -> list[str]:
        """Ids of the chains in ``statuses``, oldest first."""

    async def active_tasks_of(self, statuses: Sequence[Status]) -> list[tuple[str, str]]:
        """(chain id, task id) of unfinished tasks whose chain is in one of ``statuses``, in
        task submit order."""

    async def save_steps(self, steps: Sequence[StepRecord]) -> None:
        """Write the steps' state, task id, error, timing and history (one transaction)."""

    async def claim_steps(self, chain_id: str, claims: Sequence[tuple[str, str]]) -> list[str]:
        """Choose the task ids of steps that have not started: for each (step name, task id), a
        compare-and-set of the step's task id from none to that id, applied only while the step
        is pending (it stays pending) and the chain is Running (one transaction). Returns the
        names claimed, in the order given; a step that has an id already (another runner
        claimed it first) or a chain that is not Running claims none.

        This is what makes a step's task exactly-once: its id is durable before anyone creates
        a task for it, and every runner that starts the step creates it under that id (a second
        create of one id is refused), so two runners that see the same step finish make one
        task between them. The runner claims the steps of the next stage while it starts the
        current one, so a step's start waits for no claim of its own."""

    async def advance(
        self, advance: StepAdvance, task: TaskRecord, claim: Claim | None
    ) -> tuple[TaskRecord, list[str]] | None:
        """Start a chain's next step in one transaction: only if ``advance.after_task`` has
        ended ``advance.after_status`` at ``advance.after_attempt`` (its finish is written
        earlier in this transaction, or committed) and the chain is Running at
        ``advance.restarts``: save ``advance.steps`` (as :meth:`save_steps`), claim
        ``advance.claims`` (as :meth:`claim_steps`) and create ``task`` (as Store.submit with
        ``claim``). Returns the stored task and the names claimed; None when the condition does
        not hold (nothing is written). A task with ``task.id`` already raises, writing nothing.

        Queued in the same event-loop turn as the task's finish, it rides in the finish's group
        commit: one durable commit per step of a sequential chain instead of two. Stores that
        cannot (``advances`` False) write nothing and return None."""

    # -- status moves ---------------------------------------------------------------------------
    # Each is a compare-and-set on the chain's status: it applies only when the chain is in one
    # of the sources ``tasky.states.CHAIN_MOVES[<name>]`` gives, saves ``steps`` (as
    # :meth:`save_steps`) in the same transaction, and returns whether it did (False: the chain
    # is missing or in another status; nothing is written).

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
        """Every step settled: the Running chain ends ``status`` (Completed or Failed; another
        raises ValueError) at ``at`` with its ``error`` and ``result``."""

    async def cancel_chain(
        self, chain_id: str, at: float, reason: str, *, steps: Sequence[StepRecord] = ()
    ) -> bool:
        """The Running or Paused chain ends Canceled at ``at``, ``reason`` as its error."""

    async def pause_chain(self, chain_id: str) -> bool:
        """The Running chain is Paused: no new step starts."""

    async def resume_chain(self, chain_id: str) -> bool:
        """The Paused chain is Running again."""

    async def restart_chain(self, chain_id: str, *, steps: Sequence[StepRecord] = ()) -> bool:
        """The Failed or Canceled chain runs again: Running, its end time, error and result
        cleared, its restart count one higher."""

    async def put_definition(self, record: DefinitionRecord) -> bool:
        """Insert or replace a named definition (a replaced one keeps its ``created_at``);
        returns whether it is new."""

    async def get_definition(self, name: str) -> DefinitionRecord | None: ...

    async def list_definitions(self) -> list[DefinitionRecord]:
        """Every stored definition, by name."""

    async def delete_definition(self, name: str) -> bool: ...

    async def prune_finished(self, before: float, limit: int) -> ChainPruned:
        """Delete rows of finished chains that finished before ``before``, oldest chain first,
        at most ``limit`` rows in all (tasks, steps and chain rows; a task goes with its logs
        and attempts) in this one write, so a long chain goes over several calls: its tasks
        first, then its steps, then the chain row once it has neither. A chain with a task
        still unfinished is kept, and so is every unfinished chain. A chain that lost some rows
        is still finished and past retention, so a later call (after a crash, too) finishes it.
        Fewer than ``limit`` rows deleted means nothing prunable is left. The tasks' statistics
        keep counting them (as :meth:`Store.prune_finished`)."""

    async def count_prunable(self, before: float) -> int:
        """How many chains :meth:`prune_finished` would delete (or finish deleting) without a
        limit."""
