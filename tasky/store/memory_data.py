"""What the in-memory store keeps, shared by its task half (tasky.store.memory) and its chain
half (tasky.store.memory_chains), and the few operations both halves need.

Values cross the boundary as JSON (copied in and out through orjson), so a caller that changes a
record it handed over or got back changes nothing stored, and a value SQLite could not store
(a tuple, a set, a non-string key) is refused here too.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import orjson

from tasky.buckets import Buckets
from tasky.states import Status
from tasky.store.chain_records import ChainRecord, DefinitionRecord, StepRecord
from tasky.store.histogram import bucket_of
from tasky.store.records import (
    AttemptRecord,
    AuditRecord,
    CallbackRecord,
    ChildRecord,
    IdempotencyRecord,
    LogLine,
    NodeRecord,
    ScheduleRecord,
    TaskRecord,
    TokenRecord,
    pause_ends,
    running_seconds,
)

T = TypeVar("T")

# The SQLite writer's bounds, so commit statistics read the same on both stores.
COMMIT_SECONDS_BOUNDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
COMMIT_SIZE_BOUNDS = (1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 4096.0)


def json_copy(value: Any) -> Any:
    """``value`` as it comes back from a JSON column: a deep copy, or TypeError if not JSON."""
    return orjson.loads(orjson.dumps(value))


@dataclass(slots=True)
class Timing:
    """A worker's run-time aggregates (what SQLite keeps in worker_timing)."""

    finished: int = 0
    run_time_sum: float = 0.0
    wait_sum: float = 0.0
    wait_count: int = 0


@dataclass(slots=True)
class MemoryData:
    """Every table of the store as a dict; dicts keep insertion order, which stands in for
    SQLite's ``seq`` order wherever a listing needs it."""

    tasks: dict[str, TaskRecord] = field(default_factory=dict)
    task_seq: int = 0
    # When each task (re)joined the queue (for a retry, the end of its backoff): queue order is
    # (ready_at, seq) per worker. Internal, as SQLite's column of that name.
    ready_at: dict[str, float] = field(default_factory=dict)
    # Indexes, so a submit or a claim costs the same however many tasks are kept: per worker,
    # the ids of its tasks that hold a slot, and its queue as a heap of (ready_at, seq, entry
    # number, id). A heap entry is stale (skipped and dropped when met) once its task left the
    # queue or joined it again under a newer entry number (see queue_entry).
    holding: dict[str, set[str]] = field(default_factory=dict)
    queues: dict[str, list[tuple[float, int, int, str]]] = field(default_factory=dict)
    queue_entry: dict[str, int] = field(default_factory=dict)
    entry_numbers: Iterator[int] = field(default_factory=itertools.count)
    attempts: dict[str, dict[int, AttemptRecord]] = field(default_factory=dict)
    logs: dict[str, list[LogLine]] = field(default_factory=dict)
    children: dict[str, ChildRecord] = field(default_factory=dict)
    # Statistics: never decremented by pruning, so they keep counting pruned tasks.
    status_counts: dict[tuple[str, Status], int] = field(default_factory=dict)
    timing: dict[str, Timing] = field(default_factory=dict)
    run_time_hist: dict[str, dict[int, int]] = field(default_factory=dict)
    per_minute: dict[tuple[str, int, Status], int] = field(default_factory=dict)
    tokens: dict[str, TokenRecord] = field(default_factory=dict)
    audit: list[AuditRecord] = field(default_factory=list)
    audit_seq: int = 0
    schedules: dict[str, ScheduleRecord] = field(default_factory=dict)
    keys: dict[tuple[str, str], IdempotencyRecord] = field(default_factory=dict)
    callbacks: dict[tuple[str, str], CallbackRecord] = field(default_factory=dict)
    chains: dict[str, ChainRecord] = field(default_factory=dict)
    chain_seq: int = 0
    steps: dict[str, dict[str, StepRecord]] = field(default_factory=dict)
    definitions: dict[str, DefinitionRecord] = field(default_factory=dict)
    nodes: dict[str, NodeRecord] = field(default_factory=dict)
    commit_seconds: Buckets = field(default_factory=lambda: Buckets(COMMIT_SECONDS_BOUNDS))
    commit_size: Buckets = field(default_factory=lambda: Buckets(COMMIT_SIZE_BOUNDS))
    is_open: bool = False

    async def write(self, op: Callable[[], T]) -> T:
        """Run one write as one commit of one operation.

        ``op`` must check everything before it changes anything (so a refused write leaves no
        trace) and must not await: run in one piece on the event loop, it is atomic, as a
        transaction is, with no lock needed. The caller first yields to the loop, as it would
        waiting for a real store's writer, so concurrent callers interleave as they would there.
        """
        await asyncio.sleep(0)
        if not self.is_open:
            raise RuntimeError("store is not open")
        began = time.perf_counter()
        result = op()
        self.commit_seconds.observe(time.perf_counter() - began)
        self.commit_size.observe(1.0)
        return result

    # -- tasks ------------------------------------------------------------------------------------
    def add_task(self, task: TaskRecord) -> TaskRecord:
        """Store ``task`` (a copy the caller made, its id checked new) under the next seq."""
        self.task_seq += 1
        task.seq = self.task_seq
        self.tasks[task.id] = task
        joined = task.queued_at if task.queued_at is not None else task.created_at
        self.ready_at[task.id] = task.run_after if task.run_after is not None else joined
        self._count(task.worker, task.status, 1)
        self._index(task, held=False, queued=False)
        return task

    def set_status(self, task: TaskRecord, status: Status) -> None:
        """Move ``task`` to ``status``. Call it before changing the owner: whether a Paused task
        holds a slot is read from the owner it had when it was Running."""
        if status is not task.status:
            held, queued = holds_slot(task), task.status is Status.QUEUED
            self._count(task.worker, task.status, -1)
            self._count(task.worker, status, 1)
            task.status = status
            self._index(task, held, queued)

    def set_ready_at(self, task: TaskRecord, ready_at: float) -> None:
        """The Queued task (re)joins its worker's queue at ``ready_at``."""
        self.ready_at[task.id] = ready_at
        if task.status is Status.QUEUED:
            self._enqueue(task)

    def _count(self, worker: str, status: Status, delta: int) -> None:
        key = (worker, status)
        self.status_counts[key] = self.status_counts.get(key, 0) + delta

    def _index(self, task: TaskRecord, held: bool, queued: bool) -> None:
        """Keep the indexes true after ``task`` changed status (``held``, ``queued``: whether it
        held a slot and was Queued before)."""
        holds = holds_slot(task)
        if holds and not held:
            self.holding.setdefault(task.worker, set()).add(task.id)
        elif held and not holds:
            self.holding.get(task.worker, set()).discard(task.id)
        if task.status is Status.QUEUED and not queued:
            self._enqueue(task)
        # A task that left the queue leaves a stale entry behind, dropped when met.

    def _enqueue(self, task: TaskRecord) -> None:
        number = next(self.entry_numbers)
        self.queue_entry[task.id] = number
        entry = (self.ready_at[task.id], task.seq, number, task.id)
        heapq.heappush(self.queues.setdefault(task.worker, []), entry)

    def held_count(self, worker: str) -> int:
        """How many of ``worker``'s tasks hold a slot."""
        return len(self.holding.get(worker, ()))

    def held(self) -> list[TaskRecord]:
        """Every task that holds a slot, in submit order."""
        found = [self.tasks[i] for ids in self.holding.values() for i in ids]
        found.sort(key=_seq_of)
        return found

    def queued(
        self, worker: str, wanted: Callable[[TaskRecord], bool], count: int, *, take: bool = False
    ) -> list[TaskRecord]:
        """The first ``count`` Queued tasks of ``worker`` in queue order, (ready_at, seq), that
        ``wanted`` accepts. With ``take``, their entries leave the queue (the caller starts
        them). Costs O(log n) per task passed over: stale entries met are dropped for good."""
        heap = self.queues.get(worker)
        if heap is None:
            return []
        found: list[TaskRecord] = []
        passed: list[tuple[float, int, int, str]] = []
        while heap and len(found) < count:
            entry = heapq.heappop(heap)
            task = self.tasks.get(entry[3])
            if (
                task is None
                or task.status is not Status.QUEUED
                or self.queue_entry.get(task.id) != entry[2]
            ):
                continue  # stale
            if wanted(task):
                found.append(task)
                if take:
                    continue
            passed.append(entry)
        for entry in passed:
            heapq.heappush(heap, entry)
        return found

    def record_attempt(
        self,
        task: TaskRecord,
        status: Status,
        finished_at: float,
        error: str | None,
        result: Any = None,
        traceback: str | None = None,
    ) -> None:
        """Close the task's current attempt (call before the task moves on): its history row
        and, when it ran, the worker's run-time statistics."""
        paused = pause_ends(task.paused_at, task.paused_seconds, finished_at)
        self.attempts.setdefault(task.id, {})[task.attempt] = AttemptRecord(
            task.attempt,
            status,
            task.started_at,
            finished_at,
            error,
            json_copy(result),
            traceback,
            task.node if task.started_at is not None else None,
            paused,
        )
        if task.started_at is None:
            return
        run_time = running_seconds(task.started_at, finished_at, paused)
        timing = self.timing.setdefault(task.worker, Timing())
        timing.finished += 1
        timing.run_time_sum += run_time
        if task.queued_at is not None:
            timing.wait_sum += max(task.started_at - task.queued_at, 0.0)
            timing.wait_count += 1
        hist = self.run_time_hist.setdefault(task.worker, {})
        bucket = bucket_of(run_time)
        hist[bucket] = hist.get(bucket, 0) + 1
        minute = (task.worker, int(finished_at // 60), status)
        self.per_minute[minute] = self.per_minute.get(minute, 0) + 1

    def tasks_of_chain(self, chain_id: str) -> list[str]:
        """Ids of the chain's tasks, in submit order."""
        return [t.id for t in self.tasks.values() if t.chain_id == chain_id]

    def delete_tasks(self, task_ids: Iterable[str]) -> int:
        """Delete tasks with their logs, attempts and children; statistics are left alone, so
        they keep counting what was pruned. Returns how many tasks went."""
        deleted = 0
        for task_id in task_ids:
            self.logs.pop(task_id, None)
            self.attempts.pop(task_id, None)
            self.children.pop(task_id, None)
            self.ready_at.pop(task_id, None)
            self.queue_entry.pop(task_id, None)
            task = self.tasks.pop(task_id, None)
            if task is not None:
                self.holding.get(task.worker, set()).discard(task_id)
                deleted += 1
        return deleted

    # -- idempotency keys -------------------------------------------------------------------------
    def unexpired_key(self, key: IdempotencyRecord) -> IdempotencyRecord | None:
        """The principal's record of ``key`` if it had not expired when ``key`` was made."""
        found = self.keys.get((key.principal, key.key))
        return found if found is not None and found.expires_at > key.created_at else None

    def remember_key(self, key: IdempotencyRecord) -> None:
        """Record ``key`` (replacing an expired one), in the write that creates what it names."""
        self.keys[(key.principal, key.key)] = key


def holds_slot(task: TaskRecord) -> bool:
    """Claimed and not ended: Running, or Paused after it started (such a task has an owner;
    every move that ends the hold clears it)."""
    return task.status is Status.RUNNING or (
        task.status is Status.PAUSED and task.owner is not None
    )


def _seq_of(task: TaskRecord) -> int:
    return task.seq


def copy_task(task: TaskRecord) -> TaskRecord:
    return replace(task, config=json_copy(task.config), result=json_copy(task.result))


def copy_chain(chain: ChainRecord) -> ChainRecord:
    return replace(
        chain,
        spec=json_copy(chain.spec),
        parameters=json_copy(chain.parameters),
        result=json_copy(chain.result),
    )


def copy_step(step: StepRecord) -> StepRecord:
    return replace(step, history=list(step.history))


def page(
    rows: Sequence[T], seq_of: Callable[[T], int], limit: int, cursor: int | None, descending: bool
) -> tuple[list[T], int | None]:
    """One page of ``rows`` (in ascending seq order) after ``cursor``, and the next page's
    cursor (the last seq returned when more follow), as SQLite's read_page pages."""
    ordered = list(reversed(rows)) if descending else list(rows)
    if cursor is not None:
        ordered = [r for r in ordered if (seq_of(r) < cursor if descending else seq_of(r) > cursor)]
    chosen = ordered[:limit]
    next_cursor = seq_of(chosen[-1]) if len(ordered) > limit else None
    return chosen, next_cursor
