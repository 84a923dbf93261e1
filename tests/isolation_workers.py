"""Workers that report what a task process, or the server, can see and import."""

from __future__ import annotations

import importlib
import sys
from typing import Any

from pydantic import BaseModel, ConfigDict

from tasky import AsyncTaskContext, TaskContext, Worker, worker


class ProbeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Imported lazily, as worker code does with an optional dependency.
    module: str | None = None


class ImportProbe(Worker):
    name = "ImportProbe"
    Config = ProbeConfig
    mode = "process"

    def perform(self, config: ProbeConfig, task: TaskContext) -> dict[str, Any]:
        imported = None
        if config.module:
            try:
                imported = getattr(importlib.import_module(config.module), "__file__", "?")
            except ModuleNotFoundError:
                imported = None
        return {"imported": imported, "isolated": sys.flags.isolated, "path": sys.path}


@worker("LateImport", config=ProbeConfig)
async def late_import(config: ProbeConfig, task: AsyncTaskContext) -> str | None:
    """The same, in the server process itself."""
    try:
        return getattr(importlib.import_module(config.module or ""), "__file__", "?")
    except ModuleNotFoundError:
        return None
