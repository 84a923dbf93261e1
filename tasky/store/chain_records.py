"""Plain records of chains that cross the chain store's boundary (JSON values only)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from tasky.states import Status
from tasky.store.records import shallow_copier

# What the chain knows about a step besides its task:
#   pending    not started yet (its task id may be chosen already: see ChainStore.claim_steps)
#   submitted  it started: its task exists, or is being created under its recorded id
#   rerun      a restart asked for its failed task to run again (rerun_attempt says which run)
#   skipped    its rule said no
#   failed     it could not start (a reference had no value, the config was refused); no task
#   canceled   the chain was canceled before it started
StepState = Literal["pending", "submitted", "rerun", "skipped", "failed", "canceled"]

# How a step without a (live) task shows.
_NO_TASK_STATUS = {
    "pending": "Pending",
    "skipped": "Skipped",
    "failed": "Failed",
    "canceled": "Canceled",
}


def step_status(
    state: str, rerun_attempt: int | None, task_status: str | None, task_attempt: int | None
) -> str:
    """A step's status as the chain shows it, from its state and its task (None: no task with
    its recorded id exists); every store's step counts use it too."""
    if state == "pending" and task_status is not None:
        state = "submitted"  # its task was created before the step was marked started
    if state in ("submitted", "rerun"):
        if task_status is None:
            return "Pending"  # recorded, its task not created yet (or lost in a crash)
        if state == "rerun" and task_attempt is not None and task_attempt < (rerun_attempt or 0):
            return "Queued"  # a restart asked for another run that has not begun
        return task_status
    return _NO_TASK_STATUS[state]


def count_statuses(rows: Sequence[Sequence[Any]]) -> dict[str, int]:
    """Fold (state, rerun attempt, task status, task attempt, count) rows into counts by the
    status a step shows (the same rule as the chain's view of a step)."""
    counts: dict[str, int] = {}
    for state, rerun_attempt, task_status, task_attempt, n in rows:
        status = step_status(state, rerun_attempt, task_status, task_attempt)
        counts[status] = counts.get(status, 0) + n
    return counts


@dataclass(slots=True)
class ChainRecord:
    id: str
    spec: dict[str, Any]  # the checked definition (tasky.chains.model.ChainSpec as JSON)
    parameters: dict[str, Any]  # the values it runs with
    status: Status
    created_at: float
    name: str | None = None
    definition: str | None = None  # the named definition it was started from
    seq: int = 0
    finished_at: float | None = None
    error: str | None = None
    result: Any = None
    restarts: int = 0


@dataclass(slots=True)
class StepRecord:
    chain_id: str
    name: str
    position: int
    state: StepState = "pending"
    task_id: str | None = None
    error: str | None = None
    decided_at: float | None = None
    rerun_attempt: int | None = None
    # Tasks this step ran before a restart reset it (newest last).
    history: list[str] = field(default_factory=list)


copy_step = shallow_copier(StepRecord)


@dataclass(frozen=True, slots=True)
class ChainState:
    """The few columns of a chain the runner checks on every pass (not its definition)."""

    status: Status
    restarts: int


@dataclass(frozen=True, slots=True)
class ChainPruned:
    """What one write of ``ChainStore.prune_finished`` deleted: tasks (with their logs and
    attempts), steps, and chains whose last row went."""

    tasks: int = 0
    steps: int = 0
    chains: int = 0

    @property
    def rows(self) -> int:
        """Tasks, steps and chain rows: what the write's ``limit`` bounds."""
        return self.tasks + self.steps + self.chains


@dataclass(slots=True)
class ChainPage:
    chains: list[ChainRecord]
    next_cursor: int | None


@dataclass(slots=True)
class DefinitionRecord:
    name: str
    spec: dict[str, Any]
    created_at: float
    updated_at: float
    source: str = "api"  # "api", or the config file it came from


@dataclass(slots=True)
class StepAdvance:
    """A chain's next step started in the transaction that records the end of the step before
    it (see ChainStore.advance): the task that ended and how, the steps to save, and the task
    ids to choose for the steps after (as ChainStore.claim_steps)."""

    chain_id: str
    restarts: int  # the chain's restart count the plan was made at
    after_task: str
    after_attempt: int
    after_status: Status
    steps: list[StepRecord]
    claims: list[tuple[str, str]]
