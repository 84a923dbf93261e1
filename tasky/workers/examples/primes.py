"""Primes: count the primes up to N in a separate process (CPU-bound, process mode).

The sieve never calls ``checkpoint()``: it is the kind of code that cannot stop cooperatively.
Process mode pauses it with SIGSTOP and cancels it with SIGTERM/SIGKILL anyway.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tasky.workers.base import Worker
from tasky.workers.context import TaskContext

_SEGMENT = 1 << 18


class PrimesConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(
        default=10_000_000, ge=2, le=10**12, description="Count the primes up to this number."
    )


def _small_primes(limit: int) -> list[int]:
    sieve = bytearray([1]) * (limit + 1)
    sieve[0:2] = b"\x00\x00"
    for p in range(2, math.isqrt(limit) + 1):
        if sieve[p]:
            sieve[p * p :: p] = bytes(len(range(p * p, limit + 1, p)))
    return [i for i, flag in enumerate(sieve) if flag]


def count_primes(limit: int, task: TaskContext | None = None) -> tuple[int, int]:
    """(how many primes <= limit, the largest one), by a segmented sieve of Eratosthenes."""
    base = _small_primes(math.isqrt(limit))
    count, largest = 0, 0
    for low in range(2, limit + 1, _SEGMENT):
        high = min(low + _SEGMENT, limit + 1)
        segment = bytearray([1]) * (high - low)
        for p in base:
            if p * p >= high:
                break
            start = max(p * p, -(-low // p) * p)
            segment[start - low :: p] = bytes(len(range(start, high, p)))
        found = segment.count(1)
        if found:
            count += found
            largest = low + segment.rindex(1)
        if task is not None:
            task.progress((high - 1) / limit, f"{count} primes up to {high - 1}")
    return count, largest


class Primes(Worker):
    name = "Primes"
    description = "Counts the prime numbers up to a limit (CPU-bound, runs in its own process)."
    usage = (
        "Give limit (default 10 million). Runs in a separate process: pause and cancel act on "
        "it at once although the sieve never checks for them."
    )
    Config = PrimesConfig
    mode = "process"
    max_tasks = 2
    actions = frozenset({"cancel", "pause", "resume"})
    idempotent = True
    kill_grace = 2.0

    def perform(self, config: PrimesConfig, task: TaskContext) -> dict[str, Any]:
        count, largest = count_primes(config.limit, task)
        task.log(f"{count} primes up to {config.limit}; the largest is {largest}")
        return {"limit": config.limit, "count": count, "largest": largest}
