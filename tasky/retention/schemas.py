"""Wire shapes of the prune route (validated with them, documented with them)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class PruneRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    older_than_seconds: float = Field(
        gt=0, le=100 * 365 * 86400, description="Prune what finished more than this long ago."
    )
    worker: str | None = Field(
        default=None,
        max_length=200,
        description="Only this worker's tasks (no chains); default: every worker, and chains.",
    )
    dry_run: bool = Field(default=False, description="Count what would be pruned, delete nothing.")


class PruneResult(BaseModel):
    Tasks: int = Field(description="Tasks pruned (or, in a dry run, that would be).")
    Chains: int = Field(description="Chains pruned with their steps and tasks (or would be).")
    DryRun: bool
    Before: float = Field(description="The cut-off time (Unix seconds): older finished work goes.")
