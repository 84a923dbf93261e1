"""Workers for the API fuzzer: every config type the API must validate, and no side effects.

The fuzzer writes whatever its generator draws into these configs, so none of them touches
files, the network or other programs, and none holds a slot for long.
"""

from __future__ import annotations

import enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tasky import AsyncTaskContext, worker


class Colour(enum.StrEnum):
    red = "red"
    green = "green"


class Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str = Field(default="x", max_length=40)
    weight: float = Field(default=1.0, ge=0, le=100)


class MixedConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(default="", max_length=200)
    count: int = Field(default=1, ge=0, le=1000)
    ratio: float = Field(default=0.5, ge=0, le=1)
    flag: bool = False
    colour: Colour = Colour.red
    tags: list[str] = Field(default_factory=list, max_length=10)
    inner: Inner = Field(default_factory=Inner)


@worker("Mixed", description="Returns its config.", config=MixedConfig, max_tasks=4)
async def mixed(config: MixedConfig, task: AsyncTaskContext) -> dict[str, Any]:
    task.progress(50)
    task.log(f"mixed {config.text!r}")
    return config.model_dump(mode="json")


class NapConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: float = Field(default=0.1, ge=0, le=0.5)


@worker("Nap", description="Sleeps a little.", config=NapConfig, max_tasks=2)
async def nap(config: NapConfig, task: AsyncTaskContext) -> float:
    await task.sleep(config.seconds)
    return config.seconds


__all__ = ["mixed", "nap"]
