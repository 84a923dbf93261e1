"""How many tasks may wait for one worker: the queue cap, and what a submit over it gets.

Tasks that wait are the worker's Queued and Paused tasks in the store (a paused task that never
started is still waiting; counting it stops a client from holding work back to grow the store).
Reading the store's counts on every submit would slow the hot path, so a lane keeps the last
count and adds what it admitted since; that estimate only errs high, and a submit is refused
only after a fresh count says the queue is full.
"""

from __future__ import annotations

from dataclasses import dataclass

from tasky import clock
from tasky.engine.errors import QueueFull
from tasky.states import Status
from tasky.store.base import Store

# How old a count may be before an admission reads the store again.
_COUNT_TTL = 1.0
# A refused submit reads the store again only this often, so a flood of refusals stays cheap.
_REFUSED_TTL = 0.05
RETRY_AFTER_SECONDS = 5


@dataclass(slots=True)
class QueueCount:
    """One worker's waiting tasks as last counted, plus the admissions since."""

    counted: int = 0
    counted_at: float = float("-inf")
    admitted_since: int = 0
    # When a read of the store last found the queue full.
    full_at: float = float("-inf")

    def estimate(self) -> int:
        return self.counted + self.admitted_since


def admit_counted(count: QueueCount, limit: int, n: int = 1, now: float | None = None) -> bool:
    """Admit ``n`` on the last count alone (True), or say the store must be read (False).

    Nearly every admission ends here; a caller that tries this first awaits :func:`admit` (two
    coroutines, about 1 us of a submit) only when it says False.
    """
    now = clock.monotonic() if now is None else now
    if count.estimate() + n <= limit and now - count.counted_at < _COUNT_TTL:
        count.admitted_since += n
        return True
    return False


async def admit(
    count: QueueCount, store: Store, worker: str, limit: int, in_flight: int, n: int = 1
) -> None:
    """Count ``n`` more waiting tasks (all or none), or raise QueueFull. ``in_flight``: inserts
    not committed."""
    now = clock.monotonic()
    if admit_counted(count, limit, n, now):
        return
    if now - count.full_at < _REFUSED_TTL:
        raise _full(worker, limit, n)
    stats = await store.worker_stats(worker)
    waiting = stats.by_status.get(Status.QUEUED.value, 0) + stats.by_status.get(
        Status.PAUSED.value, 0
    )
    count.counted, count.counted_at = waiting, clock.monotonic()
    count.admitted_since = in_flight  # admitted but not committed: not in the store's count yet
    if count.estimate() + n > limit:
        if count.estimate() >= limit:
            count.full_at = count.counted_at
        raise _full(worker, limit, n)
    count.admitted_since += n


def _full(worker: str, limit: int, n: int) -> QueueFull:
    if n > 1:
        message = (
            f"worker {worker} has no room for {n} more waiting tasks (its limit is {limit}); "
            "try again later"
        )
    else:
        message = f"worker {worker} has {limit} tasks waiting, its limit; try again later"
    return QueueFull(message, RETRY_AFTER_SECONDS)
