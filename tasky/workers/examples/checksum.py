"""Checksum: the digest of a file under the allowed roots."""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tasky.workers.base import Worker
from tasky.workers.context import TaskContext
from tasky.workers.paths import confine

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
        path = confine(config.path, task.roots, must_exist=True)
        if not path.is_file():
            raise ValueError(f"{config.path} is not a regular file")
        digest = hashlib.new(config.algorithm)
        size = path.stat().st_size
        done = 0
        with path.open("rb") as src:
            while chunk := src.read(_CHUNK):
                task.checkpoint()
                digest.update(chunk)
                done += len(chunk)
                task.progress(done / size if size else 1.0, f"{done} of {size} bytes")
        return {
            "path": str(path),
            "algorithm": config.algorithm,
            "digest": digest.hexdigest(),
            "bytes": done,
        }
