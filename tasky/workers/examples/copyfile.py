"""CopyFile: copy a file on the server, inside the allowed roots only."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tasky.workers.base import Worker
from tasky.workers.context import TaskContext
from tasky.workers.files import open_source, replace_file

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
        # Both ends are opened through descriptors with no symlink following; the copy lands
        # under its name only once complete (a cancelled copy leaves the destination as it was).
        with open_source(config.source, task.roots) as src:
            size = src.stat.st_size
            copied = 0
            with replace_file(
                config.destination, task.roots, default_name=src.path.name, source=src.stat
            ) as dst:
                while chunk := src.file.read(_CHUNK):
                    task.checkpoint()
                    dst.file.write(chunk)
                    copied += len(chunk)
                    task.progress(copied / size if size else 1.0, f"{copied} of {size} bytes")
        task.log(f"copied {src.path} to {dst.path} ({copied} bytes)")
        return {"source": str(src.path), "destination": str(dst.path), "bytes": copied}
