"""Pydantic models of the schedule routes' answers, for the OpenAPI document (and tests)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ScheduleView(BaseModel):
    model_config = ConfigDict(extra="allow")

    Name: str
    Worker: str | None
    Config: dict[str, Any] | None
    Chain: str | None = Field(description="The named chain definition it starts, if not a worker.")
    Parameters: dict[str, Any] | None
    Cron: str | None
    Interval: float | None = Field(description="Seconds between runs (when not cron).")
    Every: str | None = Field(description="The interval as a duration, like 1m30s.")
    TimeZone: str
    CatchUp: str = Field(description="skip or once: what a due time missed while down does.")
    Paused: bool
    Source: str = Field(description="api, or the config file that declares it.")
    CreatedAt: float
    NextRun: float | None = Field(description="Epoch seconds of the next due time (null: paused).")
    LastRun: float | None = Field(description="Epoch seconds when the last run started.")
    LastTaskId: str | None = Field(description="The TaskId of the last run (worker schedules).")
    LastChainId: str | None = Field(description="The ChainId of the last run (chain schedules).")
    LastError: str | None = Field(description="Why the last run could not start, if it could not.")


class ScheduleList(BaseModel):
    Schedules: list[ScheduleView]


class ScheduleDeleted(BaseModel):
    Name: str
    Deleted: bool
