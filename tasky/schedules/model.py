"""The wire shape of a schedule definition (API body, TOML table) and its checks."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"


class ScheduleSpec(BaseModel):
    """What to start and when: a worker + config or a named chain + parameters, on a cron
    expression or a fixed interval."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(pattern=NAME_PATTERN, description="Unique name of the schedule.")
    worker: str | None = Field(None, max_length=200, description="The worker to run.")
    config: dict[str, Any] = Field(
        default_factory=dict, description="The worker's config (with worker)."
    )
    chain: str | None = Field(
        None, max_length=200, description="A named chain definition to start (instead of worker)."
    )
    parameters: dict[str, Any] = Field(
        default_factory=dict, description="The chain's parameters (with chain)."
    )
    cron: str | None = Field(
        None,
        max_length=200,
        description="Five cron fields (minute hour day-of-month month day-of-week) or @hourly, "
        "@daily, @weekly, @monthly, @yearly.",
    )
    interval: float | int | None = Field(
        None, description="Seconds between runs (instead of cron), 1 to 31622400."
    )
    timezone: str = Field("UTC", max_length=64, description="IANA time zone of the cron fields.")
    catch_up: Literal["skip", "once"] = Field(
        "skip",
        description="A due time missed while no server ran: skip it, or run once to catch up.",
    )
    paused: bool = Field(False, description="Create it paused.")

    @model_validator(mode="after")
    def _one_of_each(self) -> ScheduleSpec:
        if (self.worker is None) == (self.chain is None):
            raise ValueError("give exactly one of worker and chain")
        if (self.cron is None) == (self.interval is None):
            raise ValueError("give exactly one of cron and interval")
        if self.worker is not None and self.parameters:
            raise ValueError("parameters go with chain; a worker takes config")
        if self.chain is not None and self.config:
            raise ValueError("config goes with worker; a chain takes parameters")
        return self
