"""Checksum: the digest of a file under the allowed roots."""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tasky.workers.base import Worker
from tasky.workers.context import TaskContext
from tasky.workers.files import open_source

_CHUNK = 1 << 20


class ChecksumConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1, max_length=4096, description="File to hash.")
    algorithm: Literal["sha256", "sha512", "sha1", "md5", "blake2b"] = Field(
        default="sha256", description="Hash algorithm."
    )


class Checksum(Worker):
    name = "Checksum"
    description = "Checksum computes the sha256 (or another digest) of a file on the server."
    usage = "Give path (inside the allowed roots) and optionally algorithm. Pause and cancel work."
    Config = ChecksumConfig
    max_tasks = 4
    actions = frozenset({"cancel", "pause", "resume"})
    idempotent = True

    def perform(self, config: ChecksumConfig, task: TaskContext) -> dict[str, Any]:
        digest = hashlib.new(config.algorithm)
        done = 0
        with open_source(config.path, task.roots) as src:
            size = src.stat.st_size
            while chunk := src.file.read(_CHUNK):
                task.checkpoint()
                digest.update(chunk)
                done += len(chunk)
                task.progress(done / size if size else 1.0, f"{done} of {size} bytes")
        return {
            "path": str(src.path),
            "algorithm": config.algorithm,
            "digest": digest.hexdigest(),
            "bytes": done,
        }
