"""A process-mode worker that reports what its task process can see and import."""

from __future__ import annotations

import importlib
import sys
from typing import Any

from pydantic import BaseModel, ConfigDict

from tasky import TaskContext, Worker


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
