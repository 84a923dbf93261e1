"""An in-memory store, for tests only: ``create_store("memory:")``.

It implements the whole Store contract (tasks and their operations, logs, attempts, statistics,
children, tokens, the audit log, idempotency keys, callbacks, schedules, retention) and the chain
store, with the semantics the SQLite store has, so the engine, the chain runner and the API can be
tested where storage is not the point. Its data lives as long as the object (two instances share
nothing, and nothing reaches a disk): it is no server's store. ``tests/store_contract`` runs the
same contract suite on it and on SQLite.

Each write runs in one piece on the event loop (see :meth:`MemoryData.write`): that is what makes
a claim or a compare-and-set atomic here, as a transaction does in SQLite.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from tasky.states import FINISHED, MOVES, Status
from tasky.store.base import DuplicateId, finish_each, node_is_alive
from tasky.store.memory_chains import MemoryChainStore
from tasky.store.memory_data import MemoryData, copy_task, holds_slot, json_copy, page
from tasky.store.memory_tables import MemoryTables
from tasky.store.one_node import OneNodeMixin
from tasky.store.records import (
    AttemptEnd,
    AttemptRecord,
    ChildRecord,
    Claim,
    CommitStats,
    IdempotencyRecord,
    LogLine,
    NodeRecord,
    Outcome,
    TaskPage,
    TaskRecord,
    WorkerStats,
    batch_target,
    pause_ends,
)

# What a re-queued task starts its next attempt without.
_CLEARED = {
    "started_at": None,
    "finished_at": None,
    "owner": None,
    "lease_until": None,
    "run_after": None,
    "progress": None,
    "progress_message": None,
    "result": None,
    "paused_seconds": 0.0,
    "paused_at": None,
}


class MemoryStore(MemoryTables, OneNodeMixin):
    """The Store contract in plain dicts and lists (see the module docstring)."""

    shared = False
    ordered_writes = False

    def __init__(self) -> None:
        super().__init__(MemoryData())
        self.chains = MemoryChainStore(self._data)

    async def open(self) -> None:
        self._data.is_open = True

    async def close(self) -> None:
        """Refuse writes until opened again. The data stays with the object, so a test can
        stop an engine and start another on the same store, as a restarted server would."""
        self._data.is_open = False

    # -- submitting -------------------------------------------------------------------------------
    async def submit(self, task: TaskRecord, claim: Claim | None = None) -> TaskRecord:
        [new] = _new_tasks([task])
        [stored] = await self._data.write(lambda: self._add_all([new], claim))
        return stored

    async def submit_with_key(
        self, task: TaskRecord, key: IdempotencyRecord, claim: Claim | None = None
    ) -> TaskRecord | IdempotencyRecord:
        [new] = _new_tasks([task])
        keyed = replace(key, target_id=task.id)

        def op() -> TaskRecord | IdempotencyRecord:
            existing = self._data.unexpired_key(keyed)
            if existing is not None:
                return existing
            [stored] = self._add_all([new], claim)
            self._data.remember_key(keyed)
            return stored

        return await self._data.write(op)

    async def submit_many(
        self, tasks: Sequence[TaskRecord], claim: Claim | None = None
    ) -> list[TaskRecord]:
        new = _new_tasks(tasks)
        return await self._data.write(lambda: self._add_all(new, claim))

    async def submit_many_with_key(
        self, tasks: Sequence[TaskRecord], key: IdempotencyRecord, claim: Claim | None = None
    ) -> list[TaskRecord] | IdempotencyRecord:
        new = _new_tasks(tasks)
        keyed = replace(key, target_id=batch_target([t.id for t in tasks]))

        def op() -> list[TaskRecord] | IdempotencyRecord:
            existing = self._data.unexpired_key(keyed)
            if existing is not None:
                return existing
            stored = self._add_all(new, claim)
            self._data.remember_key(keyed)
            return stored

        return await self._data.write(op)

    def insert_many_now(self, tasks: Iterable[TaskRecord]) -> None:
        rows = [copy_task(t) for t in tasks]
        self._refuse_taken(rows)
        for task in rows:
            self._data.add_task(task)

    def _refuse_taken(self, tasks: Sequence[TaskRecord]) -> None:
        ids = [t.id for t in tasks]
        taken = [i for i in ids if i in self._data.tasks]
        if taken or len(set(ids)) < len(ids):
            raise DuplicateId(f"task id(s) already in use: {', '.join(taken) or 'twice given'}")

    def _add_all(self, tasks: Sequence[TaskRecord], claim: Claim | None) -> list[TaskRecord]:
        """Inside a write: all of ``tasks`` (copies, see :func:`_new_tasks`; each started at
        once if ``claim`` lets it), or none when an id is taken."""
        self._refuse_taken(tasks)
        added = []
        started = 0  # a claim's count caps the tasks it starts in the whole batch
        for task in tasks:
            stored = self._data.add_task(task)
            if (
                claim is not None
                and (claim.count is None or started < claim.count)
                and self._may_start_now(stored, claim)
            ):
                self._start(stored, claim, _joined(stored))
                started += 1
            added.append(copy_task(stored))
        return added

    def _may_start_now(self, task: TaskRecord, claim: Claim) -> bool:
        """``task`` is runnable when it joins the queue, finds a free slot, and nobody runnable
        waits ahead of it."""
        start = _joined(task)
        if (
            not claim.accepts(task.target)
            or not _runnable(task, start)
            or self._data.held_count(task.worker) >= claim.limit
        ):
            return False

        def ahead(other: TaskRecord) -> bool:
            return other is not task and _runnable(other, start) and claim.accepts(other.target)

        return not self._data.queued(task.worker, ahead, 1)

    # -- claiming ---------------------------------------------------------------------------------
    async def claim(self, worker: str, claim: Claim, at: float) -> list[TaskRecord]:
        def op() -> list[TaskRecord]:
            free = claim.limit - self._data.held_count(worker)
            wanted = free if claim.count is None else min(free, claim.count)
            if wanted <= 0:
                return []

            def startable(task: TaskRecord) -> bool:
                return _runnable(task, at) and claim.accepts(task.target)

            chosen = self._data.queued(worker, startable, wanted, take=True)
            for task in chosen:
                self._start(task, claim, at)
            return [copy_task(t) for t in chosen]

        return await self._data.write(op)

    def _start(self, task: TaskRecord, claim: Claim, at: float) -> None:
        self._data.set_status(task, Status.RUNNING)
        task.owner = claim.owner
        task.lease_until = claim.lease_until
        task.started_at = at
        task.finished_at = None
        task.node = claim.node

    async def next_runnable_at(
        self, worker: str, targets: Sequence[str] | None = None
    ) -> float | None:
        def served(task: TaskRecord) -> bool:
            return targets is None or task.target is None or task.target in targets

        # The queue is in (ready_at, seq) order: the first task served is the soonest.
        first = self._data.queued(worker, served, 1)
        return self._data.ready_at[first[0].id] if first else None

    # -- ending an attempt ------------------------------------------------------------------------
    async def finish(
        self, task_id: str, owner: str, attempt: int, outcome: Outcome, lazy: bool = False
    ) -> bool:
        if outcome.status not in MOVES["finish"].targets:
            raise ValueError(f"an attempt does not end {outcome.status}")
        completed = outcome.status is Status.COMPLETED
        result = json_copy(outcome.result) if completed else None

        def op() -> bool:
            task = self._held_by("finish", task_id, owner, attempt)
            if task is None:
                return False
            self._data.record_attempt(
                task, outcome.status, outcome.at, outcome.error, result, outcome.traceback
            )
            self._end(task, outcome.status, outcome.at, outcome.error)
            task.result = result
            if completed:
                task.progress = 1.0
            elif outcome.progress is not None:
                task.progress = outcome.progress
            if outcome.progress_message is not None:
                task.progress_message = outcome.progress_message
            return True

        return await self._data.write(op)

    async def finish_many(self, ends: Sequence[AttemptEnd], lazy: bool = False) -> list[bool]:
        return await finish_each(self, ends, lazy)

    async def retry_later(
        self,
        task_id: str,
        owner: str,
        attempt: int,
        error: str,
        run_after: float,
        at: float,
        traceback: str | None = None,
    ) -> bool:
        def op() -> bool:
            task = self._held_by("retry_later", task_id, owner, attempt)
            if task is None:
                return False
            self._data.record_attempt(task, Status.FAILED, at, error, traceback=traceback)
            self._requeue(task, at, error, run_after)
            return True

        return await self._data.write(op)

    async def requeue_interrupted(
        self, task_id: str, owner: str | None, attempt: int, reason: str, at: float
    ) -> bool:
        def op() -> bool:
            task = self._held_by("requeue_interrupted", task_id, owner, attempt)
            if task is None:
                return False
            self._data.record_attempt(task, Status.FAILED, at, reason)
            self._requeue(task, at, reason)
            return True

        return await self._data.write(op)

    async def fail_interrupted(
        self, task_id: str, owner: str | None, attempt: int, reason: str, at: float
    ) -> bool:
        def op() -> bool:
            task = self._held_by("fail_interrupted", task_id, owner, attempt)
            if task is None:
                return False
            self._data.record_attempt(task, Status.FAILED, at, reason)
            self._end(task, Status.FAILED, at, reason)
            return True

        return await self._data.write(op)

    def _held_by(
        self, move: str, task_id: str, owner: str | None, attempt: int
    ) -> TaskRecord | None:
        """The task if ``owner`` holds its attempt ``attempt`` and ``move`` may start from its
        status (the compare-and-set of every operation on held work)."""
        task = self._data.tasks.get(task_id)
        if (
            task is None
            or task.status not in MOVES[move].sources
            or not holds_slot(task)
            or task.owner != owner
            or task.attempt != attempt
        ):
            return None
        return task

    def _end(self, task: TaskRecord, status: Status, at: float, error: str | None) -> None:
        """The held attempt ended and the task with it: its slot and lease are free."""
        self._data.set_status(task, status)
        task.finished_at, task.error = at, error
        task.owner = task.lease_until = None
        task.paused_seconds = pause_ends(task.paused_at, task.paused_seconds, at)
        task.paused_at = None

    def _requeue(
        self, task: TaskRecord, at: float, error: str | None, run_after: float | None = None
    ) -> None:
        """Back to the end of the queue (for a retry: the end of its backoff), next attempt."""
        self._data.set_status(task, Status.QUEUED)
        for name, value in _CLEARED.items():
            setattr(task, name, value)
        task.attempt += 1
        task.queued_at, task.run_after, task.error = at, run_after, error
        self._data.set_ready_at(task, at if run_after is None else run_after)

    # -- control ----------------------------------------------------------------------------------
    async def cancel(self, task_id: str, at: float) -> bool:
        def op() -> bool:
            task = self._waiting("cancel", task_id)
            if task is None:
                return False
            # As in SQLite: the attempt that never started is recorded as canceled.
            self._data.record_attempt(task, Status.CANCELED, at, "canceled")
            self._data.set_status(task, Status.CANCELED)
            task.finished_at = at
            task.error = "canceled"
            return True

        return await self._data.write(op)

    async def pause(self, task_id: str, owner: str | None, at: float) -> bool:
        def op() -> bool:
            task = self._data.tasks.get(task_id)
            if task is None or task.status not in MOVES["pause"].sources:
                return False
            if owner is None and task.status is not Status.QUEUED:
                return False
            if owner is not None and (task.status is not Status.RUNNING or task.owner != owner):
                return False
            self._data.set_status(task, Status.PAUSED)
            if owner is not None:  # a started attempt stops running until resumed
                task.paused_at = at
            return True

        return await self._data.write(op)

    async def resume(self, task_id: str, owner: str | None, at: float) -> bool:
        def op() -> bool:
            task = self._data.tasks.get(task_id)
            if task is None or task.status not in MOVES["resume"].sources:
                return False
            if owner is None:
                if holds_slot(task):
                    return False
                self._data.set_status(task, Status.QUEUED)
                task.queued_at = at
                self._data.set_ready_at(task, at)
                return True
            if not holds_slot(task) or task.owner != owner:
                return False
            self._data.set_status(task, Status.RUNNING)
            task.paused_seconds = pause_ends(task.paused_at, task.paused_seconds, at)
            task.paused_at = None
            return True

        return await self._data.write(op)

    async def rerun(self, task_id: str, at: float) -> bool:
        def op() -> bool:
            task = self._data.tasks.get(task_id)
            if task is None or task.status not in MOVES["rerun"].sources:
                return False
            self._requeue(task, at, None)
            return True

        return await self._data.write(op)

    async def update_config(self, task_id: str, config: Any) -> bool:
        stored_config = json_copy(config)

        def op() -> bool:
            task = self._data.tasks.get(task_id)
            if task is None or task.status not in (Status.QUEUED, Status.PAUSED):
                return False
            if holds_slot(task):
                return False
            task.config = stored_config
            return True

        return await self._data.write(op)

    def _waiting(self, move: str, task_id: str) -> TaskRecord | None:
        """The task if it holds no slot and ``move`` may start from its status."""
        task = self._data.tasks.get(task_id)
        if task is None or task.status not in MOVES[move].sources or holds_slot(task):
            return None
        return task

    # -- leases -----------------------------------------------------------------------------------
    async def heartbeat(self, owner: str, task_ids: Sequence[str], lease_until: float) -> int:
        def op() -> int:
            held = 0
            for task_id in task_ids:
                task = self._data.tasks.get(task_id)
                if task is not None and holds_slot(task) and task.owner == owner:
                    task.lease_until = lease_until
                    held += 1
            return held

        return await self._data.write(op)

    async def release(self, owner: str) -> int:
        def op() -> int:
            mine = [t for t in self._data.held() if t.owner == owner]
            for task in mine:
                task.lease_until = None  # no lease: ended (see held_tasks)
            return len(mine)

        return await self._data.write(op)

    async def held_tasks(self, expired_before: float | None = None) -> list[TaskRecord]:
        return [
            copy_task(t)
            for t in self._data.held()
            if (expired_before is None or t.lease_until is None or t.lease_until < expired_before)
        ]

    # -- nodes ------------------------------------------------------------------------------------
    async def register_node(self, node: NodeRecord, alive_after: float) -> NodeRecord | None:
        def op() -> NodeRecord | None:
            known = self._data.nodes.get(node.name)
            if known is not None and node_is_alive(known, node.owner, alive_after):
                return replace(known, labels=list(known.labels), workers=list(known.workers))
            self._data.nodes[node.name] = replace(
                node, labels=list(node.labels), workers=list(node.workers), running=0
            )
            return None

        return await self._data.write(op)

    async def node_heartbeat(self, name: str, owner: str, at: float) -> bool:
        def op() -> bool:
            known = self._data.nodes.get(name)
            if known is None or known.owner != owner or known.stopped_at is not None:
                return False
            known.heartbeat_at = at
            return True

        return await self._data.write(op)

    async def stop_node(self, name: str, owner: str, at: float) -> bool:
        def op() -> bool:
            known = self._data.nodes.get(name)
            if known is None or known.owner != owner:
                return False
            known.stopped_at = at
            return True

        return await self._data.write(op)

    async def list_nodes(self) -> list[NodeRecord]:
        held: dict[str, int] = {}
        for task in self._data.held():
            if task.owner is not None:
                held[task.owner] = held.get(task.owner, 0) + 1
        return [
            replace(
                node,
                labels=list(node.labels),
                workers=list(node.workers),
                running=held.get(node.owner, 0),
            )
            for _, node in sorted(self._data.nodes.items())
        ]

    # -- what runs report -------------------------------------------------------------------------
    async def set_progress(self, updates: Sequence[tuple[str, float | None, str | None]]) -> None:
        def op() -> None:
            for task_id, fraction, message in updates:
                task = self._data.tasks.get(task_id)
                if task is not None:
                    task.progress, task.progress_message = fraction, message

        await self._data.write(op)

    async def append_logs(self, lines: Sequence[tuple[str, float, str]], max_lines: int) -> None:
        def op() -> None:
            touched = set()
            for task_id, ts, line in lines:
                kept = self._data.logs.setdefault(task_id, [])
                kept.append(LogLine(kept[-1].seq + 1 if kept else 1, ts, line))
                touched.add(task_id)
            for task_id in touched:
                kept = self._data.logs[task_id]
                dropped = max(len(kept) - max_lines, 0)
                if dropped:
                    del kept[:dropped]
                    task = self._data.tasks.get(task_id)
                    if task is not None:
                        task.logs_dropped += dropped

        await self._data.write(op)

    async def record_child(self, child: ChildRecord) -> None:
        def op() -> None:
            # A replaced child goes to the end, as SQLite's INSERT OR REPLACE puts it.
            self._data.children.pop(child.task_id, None)
            self._data.children[child.task_id] = child

        await self._data.write(op)

    async def forget_children(self, task_ids: Sequence[str]) -> None:
        def op() -> None:
            for task_id in task_ids:
                self._data.children.pop(task_id, None)

        await self._data.write(op)

    # -- reads ------------------------------------------------------------------------------------
    async def get(self, task_id: str) -> TaskRecord | None:
        task = self._data.tasks.get(task_id)
        return None if task is None else copy_task(task)

    async def children(self) -> list[ChildRecord]:
        return list(self._data.children.values())

    async def list_tasks(
        self,
        *,
        status: Status | None = None,
        worker: str | None = None,
        chain_id: str | None = None,
        limit: int = 100,
        cursor: int | None = None,
        descending: bool = False,
        id_prefix: str | None = None,
        created_after: float | None = None,
        created_before: float | None = None,
        error_contains: str | None = None,
    ) -> TaskPage:
        wanted = None if not error_contains else _ascii_lower(error_contains)
        rows = [
            t
            for t in self._data.tasks.values()
            if (status is None or t.status is status)
            and (worker is None or t.worker == worker)
            and (chain_id is None or t.chain_id == chain_id)
            and (not id_prefix or t.id.startswith(id_prefix))
            and (created_after is None or t.created_at >= created_after)
            and (created_before is None or t.created_at < created_before)
            and (wanted is None or (t.error is not None and wanted in _ascii_lower(t.error)))
        ]
        chosen, next_cursor = page(rows, _seq, limit, cursor, descending)
        return TaskPage([copy_task(t) for t in chosen], next_cursor)

    async def logs(self, task_id: str, after: int = 0, limit: int = 1000) -> list[LogLine]:
        lines = [ln for ln in self._data.logs.get(task_id, []) if ln.seq > after]
        return [replace(ln) for ln in lines[:limit]]

    async def attempts(self, task_id: str) -> list[AttemptRecord]:
        kept = self._data.attempts.get(task_id, {})
        return [replace(a, result=json_copy(a.result)) for _, a in sorted(kept.items())]

    async def worker_stats(self, worker: str) -> WorkerStats:
        data = self._data
        stats = WorkerStats(worker=worker)
        stats.by_status = {
            status.value: n for (name, status), n in data.status_counts.items() if name == worker
        }
        timing = data.timing.get(worker)
        if timing is not None:
            stats.finished, stats.run_time_sum = timing.finished, timing.run_time_sum
            stats.wait_sum, stats.wait_count = timing.wait_sum, timing.wait_count
        stats.run_time_hist = dict(data.run_time_hist.get(worker, {}))
        return stats

    async def finished_per_minute(
        self, worker: str, since_minute: int
    ) -> list[tuple[int, str, int]]:
        return sorted(
            (minute, status.value, n)
            for (name, minute, status), n in self._data.per_minute.items()
            if name == worker and minute >= since_minute
        )

    async def queue_positions(self, worker: str, task_ids: Sequence[str]) -> dict[str, int]:
        wanted = set(task_ids)
        queue = sorted(
            (
                t
                for t in self._data.tasks.values()
                if t.worker == worker and t.status is Status.QUEUED
            ),
            key=lambda t: (self._data.ready_at[t.id], t.seq),
        )
        return {t.id: n for n, t in enumerate(queue, start=1) if t.id in wanted}

    async def oldest_queued_at(self, worker: str) -> float | None:
        for task in self._data.tasks.values():  # seq order: the first submitted
            if task.worker == worker and task.status is Status.QUEUED:
                return task.queued_at
        return None

    def commit_stats(self) -> CommitStats:
        return CommitStats(self._data.commit_seconds.snapshot(), self._data.commit_size.snapshot())

    # -- retention --------------------------------------------------------------------------------
    async def prune_finished(self, before: float, worker: str | None, limit: int) -> int:
        def op() -> int:
            ids = [t.id for t in self._prunable(before, worker)][:limit]
            return self._data.delete_tasks(ids)

        return await self._data.write(op)

    async def count_prunable(self, before: float, worker: str | None) -> int:
        return len(self._prunable(before, worker))

    def _prunable(self, before: float, worker: str | None) -> list[TaskRecord]:
        """Finished tasks outside chains (a chain's tasks go with the chain) that ended before
        ``before``, by worker and age."""
        found = [
            t
            for t in self._data.tasks.values()
            if t.status in FINISHED
            and t.chain_id is None
            and t.finished_at is not None
            and t.finished_at < before
            and (worker is None or t.worker == worker)
        ]
        found.sort(key=lambda t: (t.worker, t.finished_at, t.seq))
        return found


def _new_tasks(tasks: Sequence[TaskRecord]) -> list[TaskRecord]:
    """Copies of submitted tasks, made before the write, so a config that is not JSON fails
    its caller and a batch is refused whole."""
    for task in tasks:
        if task.status is not Status.QUEUED:
            raise ValueError(f"a task is submitted Queued, not {task.status}")
    return [copy_task(t) for t in tasks]


def _joined(task: TaskRecord) -> float:
    """When the task (re)joined the queue."""
    return task.queued_at if task.queued_at is not None else task.created_at


def _runnable(task: TaskRecord, at: float) -> bool:
    return task.run_after is None or task.run_after <= at


def _seq(task: TaskRecord) -> int:
    return task.seq


# The same folding as SQLite's lower(): ASCII letters only, so both stores find the same errors.
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _ascii_lower(text: str) -> str:
    return text.translate(_ASCII_LOWER)
