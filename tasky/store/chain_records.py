"""Plain records of chains that cross the chain store's boundary (JSON values only)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from tasky.states import Status

# What the chain knows about a step besides its task:
#   pending    not started yet
#   submitted  its task id is chosen and recorded (the task exists, or is being created)
#   rerun      a restart asked for its failed task to run again (rerun_attempt says which run)
#   skipped    its rule said no
#   failed     it could not start (a reference had no value, the config was refused); no task
#   canceled   the chain was canceled before it started
StepState = Literal["pending", "submitted", "rerun", "skipped", "failed", "canceled"]


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
