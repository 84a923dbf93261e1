"""Pydantic models of the chain routes' wire shapes, for the OpenAPI document (and tests)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ChainCreated(BaseModel):
    ChainId: str = Field(pattern=r"^[0-9a-f]{32}$")


class ChainSummary(_Open):
    ChainId: str
    Name: str | None
    Definition: str | None = Field(description="The named definition it was started from.")
    Status: str = Field(description="Running, Paused, Completed, Failed or Canceled.")
    CreatedAt: float
    FinishedAt: float | None
    Restarts: int
    Error: str | None
    Duration: str | None = None


class ChainList(BaseModel):
    Chains: list[ChainSummary]
    NextCursor: str | None = Field(
        description="Pass as ?cursor= for the next page; null at the end."
    )


class StepStatus(_Open):
    Name: str
    Stage: int = Field(description="Position of its stage (a step or a parallel group).")
    Group: str | None = Field(description="The parallel group it belongs to, if any.")
    Worker: str
    When: str
    Status: str = Field(
        description="Pending, Queued, Running, Paused, Completed, Failed, Canceled or Skipped."
    )
    TaskId: str | None
    Attempt: int | None
    StartedAt: float | None
    FinishedAt: float | None
    Duration: str | None = Field(
        description="Its task's run time once finished: running time only (pauses left out)."
    )
    PausedSeconds: float = Field(
        default=0.0, description="Time its task spent Paused after it started (ended pauses)."
    )
    PausedAt: float | None = Field(
        default=None, description="When the pause under way began; else null."
    )
    Error: str | None
    Output: Any = Field(description="The task's Output once it has completed.")
    PreviousTaskIds: list[str] = Field(description="Tasks this step ran before a restart.")


class ChainDetail(ChainSummary):
    Parameters: dict[str, Any]
    OnFailure: str
    Result: Any = Field(description="What a Completed chain returns.")
    Steps: list[StepStatus] = Field(
        description="The first 1,000 steps in definition order (every step of a shorter chain)."
    )
    StepCount: int = Field(description="How many steps the chain has.")
    StepCounts: dict[str, int] = Field(
        description="How many steps are in each status (statuses with none left out)."
    )
    StepsNextCursor: str | None = Field(
        description="Pass as ?cursor= to GET /chains/{id}/steps for the steps after Steps; null "
        "when Steps holds every step."
    )
    Callback: dict[str, Any] | None = Field(
        default=None, description="The chain's callback: URL, State, Attempts (docs/callbacks.md)."
    )


class StepPage(BaseModel):
    Steps: list[StepStatus]
    NextCursor: str | None = Field(
        description="Pass as ?cursor= for the next page; null at the end."
    )


class ChainActionRequest(BaseModel):
    action: Literal["cancel", "pause", "resume", "restart"]


class StartRequest(BaseModel):
    parameters: dict[str, Any] = Field(
        default_factory=dict, description="Values overriding the definition's defaults."
    )
    callback: str | None = Field(
        default=None,
        description="URL the finished chain's record is POSTed to (overrides the "
        "definition's; docs/callbacks.md).",
    )


class DefinitionSummary(_Open):
    Name: str
    Source: str = Field(description="'api', or the config file it comes from.")
    Description: str
    Parameters: dict[str, Any]
    CreatedAt: float
    UpdatedAt: float


class DefinitionDetail(DefinitionSummary):
    Definition: dict[str, Any]


class DefinitionDeleted(BaseModel):
    Name: str
    Deleted: bool


class DefinitionList(BaseModel):
    Definitions: list[DefinitionSummary]
