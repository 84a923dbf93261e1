"""CopyFile: copy a file on the server, inside the allowed roots only."""

from __future__ import annotations

import shutil
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tasky.workers.base import Worker
from tasky.workers.context import TaskContext
from tasky.workers.paths import confine

_CHUNK = 1 << 20


class CopyFileConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = Field(min_length=1, max_length=4096, description="File to copy.")
    destination: str = Field(
        min_length=1, max_length=4096, description="Where to copy it (a file path)."
    )


class CopyFile(Worker):
    name = "CopyFile"
    description = (
        "CopyFile will copy a file on the server. You must specify the Source and Destination"
    )
    usage = (
        "Both paths must lie inside the server's allowed roots (--root); relative paths "
        "start at the first root."
    )
    Config = CopyFileConfig
    max_tasks = 10
    actions = frozenset({"cancel"})
    idempotent = True

    def perform(self, config: CopyFileConfig, task: TaskContext) -> dict[str, Any]:
        source = confine(config.source, task.roots, must_exist=True)
        destination = confine(config.destination, task.roots, must_exist=False)
        if not source.is_file():
            raise ValueError(f"{config.source} is not a regular file")
        if destination.is_dir():
            destination = confine(str(destination / source.name), task.roots, must_exist=False)
        if destination == source:
            raise ValueError("source and destination are the same file")
        size = source.stat().st_size
        copied = 0
        with source.open("rb") as src, destination.open("wb") as dst:
            while chunk := src.read(_CHUNK):
                task.checkpoint()
                dst.write(chunk)
                copied += len(chunk)
                task.progress(copied / size if size else 1.0, f"{copied} of {size} bytes")
        shutil.copystat(source, destination)
        task.log(f"copied {source} to {destination} ({copied} bytes)")
        return {"source": str(source), "destination": str(destination), "bytes": copied}
