"""DiskUsage: how much space a directory under the allowed roots takes, and its largest entries."""

from __future__ import annotations

import heapq
import os
import shutil
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tasky.workers.base import Worker
from tasky.workers.context import TaskContext
from tasky.workers.paths import confine


class DiskUsageConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(default=".", min_length=1, max_length=4096, description="Directory.")
    top: int = Field(default=10, ge=0, le=1000, description="How many of the largest files.")


class DiskUsage(Worker):
    name = "DiskUsage"
    description = (
        "DiskUsage adds up the size of a directory on the server and lists its largest files."
    )
    usage = (
        "Give path (a directory inside the allowed roots; default: the first root) and top. "
        "Symbolic links are not followed; each hard-linked file counts once."
    )
    Config = DiskUsageConfig
    max_tasks = 2
    actions = frozenset({"cancel", "pause", "resume"})
    idempotent = True

    def perform(self, config: DiskUsageConfig, task: TaskContext) -> dict[str, Any]:
        root = confine(config.path, task.roots, must_exist=True)
        if not root.is_dir():
            raise ValueError(f"{config.path} is not a directory")
        total = files = dirs = links = unreadable = 0
        seen: set[tuple[int, int]] = set()
        largest: list[tuple[int, str]] = []
        pending = [root]
        while pending:
            task.checkpoint()
            current = pending.pop()
            dirs += 1
            try:
                entries = list(os.scandir(current))
            except OSError:
                unreadable += 1
                continue
            for entry in entries:
                try:
                    if entry.is_symlink():
                        links += 1
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(Path(entry.path))
                        continue
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    unreadable += 1
                    continue
                if (st.st_dev, st.st_ino) in seen:
                    continue
                if st.st_nlink > 1:
                    seen.add((st.st_dev, st.st_ino))
                files += 1
                # Blocks actually allocated, as du counts them (sparse files take less).
                size = st.st_blocks * 512 if hasattr(st, "st_blocks") else st.st_size
                total += size
                if config.top:
                    item = (size, entry.path)
                    if len(largest) < config.top:
                        heapq.heappush(largest, item)
                    else:
                        heapq.heappushpop(largest, item)
            if dirs % 200 == 0:
                task.progress(None, f"{files} files, {dirs} directories so far")
        fs = shutil.disk_usage(root)
        return {
            "path": str(root),
            "bytes": total,
            "files": files,
            "directories": dirs,
            "symlinks": links,
            "unreadable": unreadable,
            "largest": [{"path": p, "bytes": s} for s, p in sorted(largest, reverse=True)],
            "filesystem": {"total": fs.total, "used": fs.used, "free": fs.free},
        }
