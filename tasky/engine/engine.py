"""The engine: admission (per-worker limits and FIFO queue), dispatch, running and control.

It calls the store for every durable change and keeps in memory only what makes dispatch fast:
per worker a FIFO of queued task ids and the running tasks with their control handles.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import random
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from tasky import clock
from tasky.echo import shown
from tasky.engine.admission import QueueCount, admit
from tasky.engine.counters import WorkerCounters
from tasky.engine.errors import Draining, NotFound, Unsupported, WorkerDisabled
from tasky.engine.events import EventHub
from tasky.engine.handle import Deadline, RunHandle, RunOutcome
from tasky.engine.leftovers import kill_leftovers
from tasky.engine.modes import start_run
from tasky.ids import is_valid_id, new_id
from tasky.logs import task_fields
from tasky.net.addresses import OutboundPolicy
from tasky.own_files import file_roots
from tasky.settings import Settings
from tasky.states import FINISHED, IllegalMove, Status, check_action
from tasky.store.base import Store
from tasky.store.records import (
    AttemptRecord,
    ChildRecord,
    IdempotencyRecord,
    LogLine,
    TaskPage,
    TaskRecord,
    WorkerStats,
)
from tasky.workers.base import Worker
from tasky.workers.registry import WorkerRegistry
from tasky.workers.secrets import keep_secrets, stored_config
from tasky.workers.strict import summary, validate_config

log = logging.getLogger("tasky.engine")

_FLUSH_INTERVAL = 0.2
# How often a drain looks whether the running tasks are done.
_IDLE_POLL = 0.05
# Stopping: how often to look whether a second signal asks to stop at once; the time beyond the
# longest kill_grace that abandoned work gets (a thread task reaching its next checkpoint).
_STOP_POLL = 0.1
_STOP_MARGIN = 1.0

StatusListener = Callable[[str, str, Status, str | None], None]


@dataclass(slots=True)
class _Lane:
    """Per-worker admission state: how many run now, and who waits (FIFO of task ids)."""

    worker: Worker
    running: int = 0
    queue: deque[str] = field(default_factory=deque)
    # The queue cap's bookkeeping (see tasky.engine.admission); ``admitting``: inserts in flight.
    count: QueueCount = field(default_factory=QueueCount)
    admitting: int = 0
    counters: WorkerCounters = field(default_factory=WorkerCounters)


def wrap_output(value: Any) -> dict[str, Any]:
    """``Output`` is always an object: strings as the seed's ``string_output``, others as value."""
    if isinstance(value, dict):
        return value
    if value is None:
        return {}
    if isinstance(value, str):
        return {"string_output": value}
    return {"value": value}


class Engine:
    def __init__(self, store: Store, registry: WorkerRegistry, settings: Settings) -> None:
        self.store = store
        self.registry = registry
        self.settings = settings
        self.owner = settings.node_id
        self._outbound = OutboundPolicy.parse(settings.outbound_allow)
        self._roots = file_roots(settings)
        self.events = EventHub()
        self._lanes: dict[str, _Lane] = {w.name: _Lane(w) for w in registry}
        self._running: dict[str, RunHandle] = {}
        # Enough threads for every thread-mode slot, so an admitted task never waits for a thread
        # (a paused thread-mode task keeps its thread while it waits at a checkpoint).
        thread_slots = sum(w.max_tasks for w in registry if w.execution_mode() == "thread")
        self._pool = ThreadPoolExecutor(max(settings.thread_pool_size, thread_slots), "tasky-work")
        self._progress: dict[str, tuple[float | None, str | None]] = {}
        self._log_lines: list[tuple[str, float, str]] = []
        self._background: set[asyncio.Task[Any]] = set()
        self._listeners: list[StatusListener] = []
        self._launching: dict[str, asyncio.Event] = {}
        self._timers: set[asyncio.TimerHandle] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        # Graceful shutdown (tasky.shutdown): when the drain's grace ends (monotonic; None: not
        # draining) and whether a second signal asked to stop at once.
        self._drain_ends: float | None = None
        self._hurried = False
        # Submit-acknowledged -> work-started intervals (monotonic seconds), newest last.
        self.dispatch_latencies: deque[float] = deque(maxlen=100_000)

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self._recover()
        self._spawn(self._flush_loop())
        self._spawn(self._heartbeat_loop())
        for lane in self._lanes.values():
            self._dispatch(lane)

    async def stop(self) -> None:
        """Stop without deciding the fate of running work: the next start recovers it."""
        self._stopping = True
        for timer in self._timers:
            timer.cancel()
        abandoned = list(self._running.values())
        for handle in abandoned:
            handle.abandon(now=self._hurried)
        await self._wait_stopped(abandoned)
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self._flush()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.events.close()

    async def _wait_stopped(self, handles: list[RunHandle]) -> None:
        """Give abandoned work the time a cancel gives it (a process group its kill_grace between
        SIGTERM and SIGKILL) while the loop still runs: once it ends, what is left is killed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max((h.stop_grace for h in handles), default=0.0) + _STOP_MARGIN
        pending = {asyncio.ensure_future(h.settled.wait()) for h in handles}
        while pending and not self._hurried:
            left = deadline - loop.time()
            if left <= 0:
                break
            _, pending = await asyncio.wait(pending, timeout=min(left, _STOP_POLL))
        for waiter in pending:
            waiter.cancel()

    # -- graceful shutdown (driven by tasky.shutdown) ---------------------------------------------
    def drain(self, grace: float) -> None:
        """Take no new work: submits and re-runs are refused (Draining) and nothing more is
        dispatched, while running tasks go on. ``grace``: how long they get (for Retry-After)."""
        if self._drain_ends is None:
            self._drain_ends = clock.monotonic() + grace

    @property
    def draining(self) -> bool:
        return self._drain_ends is not None

    @property
    def stops_dispatch(self) -> bool:
        return self._stopping or self._drain_ends is not None

    def refuse_new_work(self) -> None:
        if self._drain_ends is not None:
            left = math.ceil(self._drain_ends - clock.monotonic())
            raise Draining(
                "the server is shutting down and takes no new tasks; try again later",
                retry_after=max(1, left),
            )

    def busy(self) -> int:
        """Tasks holding a slot that are not paused: what a drain waits for (a paused one would
        hold the whole grace for nothing)."""
        paused = sum(1 for handle in self._running.values() if handle.ctx.paused)
        return sum(lane.running for lane in self._lanes.values()) - paused

    async def wait_idle(self, seconds: float) -> bool:
        """Wait up to ``seconds`` until no task is busy; whether none is."""
        deadline = clock.monotonic() + seconds
        while self.busy() > 0:
            left = deadline - clock.monotonic()
            if left <= 0:
                return False
            await asyncio.sleep(min(_IDLE_POLL, left))
        return True

    def hurry(self) -> None:
        """Stop at once (a second signal): task processes get SIGKILL without their grace."""
        self._hurried = True
        self.drain(0)
        if self._stopping:  # already abandoned with the workers' grace: cut it short
            for handle in list(self._running.values()):
                handle.abandon(now=True)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _recover(self) -> None:
        """Re-queue or fail what a stopped server left Running; rebuild the in-memory queues."""
        await self._end_leftover_children()
        now = clock.now()
        rows = await self.store.ids_with_status([Status.QUEUED, Status.RUNNING, Status.PAUSED])
        for task_id, worker_name, status, run_after in rows:
            lane = self._lanes.get(worker_name)
            if status is Status.QUEUED:
                if lane is None:
                    continue  # its worker is not registered here; it waits for one that is
                if run_after is not None and run_after > now:
                    self._later(
                        run_after - now, lambda lane=lane, i=task_id: self._enqueue(lane, i)
                    )
                else:
                    lane.queue.append(task_id)
                continue
            if status is Status.PAUSED:
                record = await self.store.get(task_id)
                if record is None or record.started_at is None:
                    continue  # paused before it started: it waits in the queue, held
            await self._recover_interrupted(task_id, status, lane, now)

    async def _end_leftover_children(self) -> None:
        """End the processes that tasks of a killed server started, before anything re-runs."""
        children = await self.store.children()
        if not children:
            return
        killed = kill_leftovers(children)
        if killed:
            log.warning(
                "ended %d process(es) left running by tasks of the previous server: %s",
                len(killed),
                ", ".join(map(str, killed)),
            )
        await self.store.forget_children([child.task_id for child in children])

    # -- RunSink: what runs tell the engine about their child processes ---------------------------
    def child_started(self, child: ChildRecord) -> None:
        self._spawn(self.store.record_child(child))

    def child_gone(self, task_id: str) -> None:
        self._spawn(self.store.forget_children([task_id]))

    async def _recover_interrupted(
        self, task_id: str, status: Status, lane: _Lane | None, now: float
    ) -> None:
        record = await self.store.get(task_id)
        if record is None:
            return
        if lane is not None and lane.worker.idempotent:
            moved = await self.store.transition(
                task_id,
                [status],
                Status.QUEUED,
                fields=_requeue_fields(record, now, "the server stopped during this attempt"),
                record_as=Status.FAILED,
            )
            if moved:
                lane.queue.append(task_id)
            return
        reason = (
            "the server stopped while the task was running and the worker is not safe to re-run"
            if lane is not None
            else f"the server stopped while the task was running; worker {record.worker} is gone"
        )
        if await self.store.transition(
            task_id,
            [status],
            Status.FAILED,
            fields={"finished_at": now, "error": reason, "owner": None},
        ):
            _log_failed(record, reason)

    # -- lookups --------------------------------------------------------------------------------
    def worker(self, name: str) -> Worker:
        found = self.registry.get(name)
        if found is None:
            known = ", ".join(self.registry.names())
            raise NotFound(f"no worker named {shown(name)}; workers: {known}")
        return found

    async def get(self, task_id: str) -> TaskRecord:
        record = await self.store.get(task_id) if is_valid_id(task_id) else None
        if record is None:
            raise NotFound(f"no task with id {shown(task_id)}")
        return record

    async def list_tasks(
        self,
        *,
        status: Status | None = None,
        worker: str | None = None,
        chain_id: str | None = None,
        limit: int = 100,
        cursor: int | None = None,
        descending: bool = False,
    ) -> TaskPage:
        worker_name = self.worker(worker).name if worker is not None else None
        return await self.store.list_tasks(
            status=status,
            worker=worker_name,
            chain_id=chain_id,
            limit=limit,
            cursor=cursor,
            descending=descending,
        )

    async def logs(self, task_id: str, after: int = 0, limit: int = 1000) -> list[LogLine]:
        await self.get(task_id)
        await self._flush()  # lines still in memory become readable too
        return await self.store.logs(task_id, after, limit)

    async def attempts(self, task_id: str) -> list[AttemptRecord]:
        return await self.store.attempts(task_id)

    async def worker_stats(self, name: str) -> WorkerStats:
        return await self.store.worker_stats(self.worker(name).name)

    async def finished_per_minute(self, name: str, since_minute: int) -> list[tuple[int, str, int]]:
        return await self.store.finished_per_minute(self.worker(name).name, since_minute)

    def running_count(self, name: str) -> int:
        return self._lanes[self.worker(name).name].running

    def queued_in_memory(self, name: str) -> int:
        return len(self._lanes[self.worker(name).name].queue)

    def counters(self, name: str) -> WorkerCounters:
        """What this engine counted live for the worker (submits, outcomes, queue waits)."""
        return self._lanes[self.worker(name).name].counters

    # -- submit ---------------------------------------------------------------------------------
    def validate(self, worker: Worker, config: Any) -> BaseModel:
        """Raises pydantic.ValidationError with the field errors (see tasky.workers.strict)."""
        return validate_config(worker.Config, config)

    async def submit(
        self,
        worker_name: str,
        config: Any,
        *,
        timeout: float | None = None,
        retries: int | None = None,
        chain_id: str | None = None,
        task_id: str | None = None,
    ) -> TaskRecord:
        """``task_id``: an id chosen beforehand (chains record a step's id before submitting it,
        so a crash in between cannot create the step twice); a new one otherwise."""
        created = await self._submit(worker_name, config, timeout, retries, chain_id, task_id)
        assert isinstance(created, TaskRecord)  # no key, so never an earlier request's record
        return created

    async def submit_with_key(
        self,
        worker_name: str,
        config: Any,
        key: IdempotencyRecord,
        *,
        timeout: float | None = None,
        retries: int | None = None,
        task_id: str | None = None,
    ) -> TaskRecord | IdempotencyRecord:
        """Submit unless the caller's key is taken: then nothing is created and the key's record
        (what the first request created, and its fingerprint) is returned instead.

        ``key.target_id`` is ignored: the new task's id is recorded with the key, in the same
        transaction as the task. ``task_id`` as in :meth:`submit`.
        """
        return await self._submit(worker_name, config, timeout, retries, None, task_id, key)

    async def _submit(
        self,
        worker_name: str,
        config: Any,
        timeout: float | None,
        retries: int | None,
        chain_id: str | None,
        task_id: str | None,
        key: IdempotencyRecord | None = None,
    ) -> TaskRecord | IdempotencyRecord:
        self.refuse_new_work()
        worker = self.worker(worker_name)
        if task_id is not None and not is_valid_id(task_id):
            raise ValueError(f"not a task id: {task_id!r}")
        if not worker.enabled:
            raise WorkerDisabled(f"worker {worker.name} is disabled")
        model = self.validate(worker, config)
        lane = self._lanes[worker.name]
        now = clock.now()
        record = TaskRecord(
            id=task_id or new_id(),
            worker=worker.name,
            status=Status.QUEUED,
            config=stored_config(model),
            created_at=now,
            queued_at=now,
            retries=worker.retries if retries is None else retries,
            timeout=worker.timeout if timeout is None else timeout,
            chain_id=chain_id,
        )
        # A free slot and nobody waiting: the task is inserted as already Running and starts the
        # moment its insert commits, so dispatch costs no second write and no queue round trip.
        start_now = lane.running < worker.max_tasks and not lane.queue and not self._stopping
        if start_now:
            lane.running += 1
            record.status = Status.RUNNING
            record.owner = self.owner
            record.started_at = now
            record.lease_until = now + self.settings.lease_seconds
        else:
            await self._admit(lane)  # QueueFull when the worker's queue is at its cap
            lane.admitting += 1
        existing: IdempotencyRecord | None = None
        try:
            if key is None:
                await self.store.insert(record)
            else:
                keyed = dataclasses.replace(key, target_id=record.id)
                existing = await self.store.insert_with_key(record, keyed)
        except BaseException:
            if start_now:
                lane.running -= 1
            raise
        finally:
            if not start_now:
                lane.admitting -= 1
        if existing is not None:  # a concurrent request with the same key won: nothing created
            if start_now:
                lane.running -= 1
                self._dispatch(lane)  # the slot this one held may be owed to a queued task
            return existing
        acked = clock.monotonic()
        lane.counters.submitted += 1
        self.events.publish(
            "task.created",
            task=record.id,
            worker=record.worker,
            status=record.status.value,
            chain=record.chain_id,
        )
        if start_now:
            self._launch(lane, record, model, acked)
        else:
            lane.queue.append(record.id)
            self._dispatch(lane)
        return record

    def queue_limit(self, worker: Worker) -> int:
        return worker.max_queued or self.settings.max_queued

    async def _admit(self, lane: _Lane) -> None:
        limit = self.queue_limit(lane.worker)
        await admit(lane.count, self.store, lane.worker.name, limit, lane.admitting)

    # -- dispatch -------------------------------------------------------------------------------
    def _dispatch(self, lane: _Lane) -> None:
        while lane.queue and lane.running < lane.worker.max_tasks and not self.stops_dispatch:
            task_id = lane.queue.popleft()
            lane.running += 1
            self._spawn(self._claim_and_launch(lane, task_id))

    async def _claim_and_launch(self, lane: _Lane, task_id: str) -> None:
        # Between its claim and its launch a task is Running in the store with no handle here;
        # control calls wait for this window to close (see _settle_launch).
        launching = self._launching[task_id] = asyncio.Event()
        try:
            await self._claim_and_launch_now(lane, task_id)
        finally:
            del self._launching[task_id]
            launching.set()

    async def _settle_launch(self, task_id: str) -> None:
        launching = self._launching.get(task_id)
        if launching is not None:
            await launching.wait()

    async def _claim_and_launch_now(self, lane: _Lane, task_id: str) -> None:
        now = clock.now()
        try:
            claimed = await self.store.transition(
                task_id,
                [Status.QUEUED],
                Status.RUNNING,
                fields={
                    "owner": self.owner,
                    "started_at": now,
                    "lease_until": now + self.settings.lease_seconds,
                    "finished_at": None,
                },
            )
            record = await self.store.get(task_id) if claimed else None
        except Exception:
            log.exception("claiming task %s failed", task_id)
            claimed, record = False, None
        if not claimed or record is None:
            # Paused, cancelled or updated meanwhile: the slot goes to the next one in line.
            lane.running -= 1
            self._dispatch(lane)
            return
        try:
            model = self.validate(lane.worker, record.config)
        except ValidationError as exc:
            # The summary leaves out the input values: they may be secrets.
            error = f"invalid config: {summary(exc)}"
            await self._finish(lane, record, Status.FAILED, None, error)
            return
        self._announce(record.id, record.worker, Status.RUNNING.value, record.chain_id)
        self._launch(lane, record, model, None)

    def _launch(
        self, lane: _Lane, record: TaskRecord, model: BaseModel, acked: float | None
    ) -> None:
        handle = start_run(
            lane.worker,
            record,
            model,
            sink=self,
            pool=self._pool,
            roots=self._roots,
            outbound=self._outbound,
            on_done=lambda outcome: self._spawn(self._complete(lane, record, outcome)),
        )
        if acked is not None:
            self.dispatch_latencies.append(clock.monotonic() - acked)
        if record.started_at is not None and record.queued_at is not None:
            lane.counters.queue_wait.observe(max(record.started_at - record.queued_at, 0.0))
        self._running[record.id] = handle
        if record.timeout:
            reason = f"timed out after {record.timeout:g} s"
            handle.deadline = Deadline(record.timeout, lambda: handle.time_out(reason))

    async def _complete(self, lane: _Lane, record: TaskRecord, outcome: RunOutcome) -> None:
        """Turn a run's outcome into the task's next status, durably, then free the slot."""
        status, result, error = outcome.status, outcome.result, outcome.error
        handle = self._running.get(record.id)
        if handle is not None and handle.deadline is not None:
            handle.deadline.stop()
        if handle is not None and handle.abandoned:
            handle.settled.set()  # nothing to record: the next start's recovery decides
            return
        traceback = handle.traceback if handle is not None else None
        if status is Status.FAILED and record.attempt <= record.retries:
            await self._retry(lane, record, error, traceback)
            return
        await self._finish(lane, record, status, result, error, traceback)

    async def _finish(
        self,
        lane: _Lane,
        record: TaskRecord,
        status: Status,
        result: Any,
        error: str | None,
        traceback: str | None = None,
    ) -> None:
        now = clock.now()
        fields: dict[str, Any] = {"finished_at": now, "error": error}
        # The newest progress may still be in memory; keep its message with the final write.
        live = self._progress.get(record.id)
        if live is not None:
            fields["progress"], fields["progress_message"] = live
        if status is Status.COMPLETED:
            fields["result"] = wrap_output(result)
            fields["progress"] = 1.0
        try:
            await self._flush_task(record.id)
            moved = await self.store.transition(
                record.id,
                [Status.RUNNING, Status.PAUSED],
                status,
                owner=self.owner,
                attempt=record.attempt,
                fields=fields,
                traceback=traceback,
            )
            if moved and status is Status.FAILED:
                _log_failed(record, error)
        except Exception:
            log.exception("recording the end of task %s failed", record.id)
        finally:
            self._release(lane, record.id)
        self._announce(record.id, record.worker, status.value, record.chain_id)

    async def _retry(
        self, lane: _Lane, record: TaskRecord, error: str | None, traceback: str | None = None
    ) -> None:
        worker = lane.worker
        backoff = min(worker.retry_backoff * 2 ** (record.attempt - 1), worker.retry_backoff_max)
        delay = backoff * random.uniform(0.5, 1.0)  # jitter: retries of many tasks spread out
        now = clock.now()
        await self._flush_task(record.id)
        fields = _requeue_fields(record, now, error or "failed")
        fields["run_after"] = now + delay
        try:
            moved = await self.store.transition(
                record.id,
                [Status.RUNNING, Status.PAUSED],
                Status.QUEUED,
                owner=self.owner,
                attempt=record.attempt,
                fields=fields,
                record_as=Status.FAILED,
                traceback=traceback,
            )
        finally:
            self._release(lane, record.id)
        if moved:
            lane.counters.ended("Retried")
            # Not a failed task (yet): INFO, so the WARNING lines count the tasks that failed.
            log.info(
                "task %s (worker %s) attempt %d failed, retrying in %.1f s: %s",
                record.id,
                record.worker,
                record.attempt,
                delay,
                error,
                extra=task_fields(record.id, record.worker),
            )
            self._announce(record.id, record.worker, "Queued", record.chain_id, retry_in=delay)
            self._later(delay, lambda: self._enqueue(lane, record.id))

    def _release(self, lane: _Lane, task_id: str) -> None:
        handle = self._running.pop(task_id, None)
        if handle is not None:
            handle.settled.set()
        self._progress.pop(task_id, None)
        lane.running -= 1
        self._dispatch(lane)

    def _enqueue(self, lane: _Lane, task_id: str) -> None:
        lane.queue.append(task_id)
        self._dispatch(lane)

    def _later(self, delay: float, callback: Any) -> None:
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._timers.discard(timer)
            if not self._stopping:
                callback()

        timer = loop.call_later(delay, fire)
        self._timers.add(timer)

    # -- control --------------------------------------------------------------------------------
    async def action(self, task_id: str, action: str) -> TaskRecord:
        handlers = {
            "cancel": self.cancel,
            "pause": self.pause,
            "resume": self.resume,
            "run": self.rerun,
        }
        if action not in handlers:
            raise Unsupported(f"unknown action {action!r}; use one of {', '.join(handlers)}")
        return await handlers[action](task_id)

    def _check_supported(self, record: TaskRecord, action: str) -> None:
        worker = self.registry.get(record.worker)
        if worker is None:
            raise Unsupported(f"worker {record.worker} is not registered on this server")
        check_action(record.status, action)
        # Pausing a queued task only holds it back, which every worker allows.
        held_in_queue = record.status is Status.QUEUED or (
            record.status is Status.PAUSED and record.id not in self._running
        )
        if action in ("pause", "resume") and held_in_queue:
            return
        if not worker.supports(action):
            raise Unsupported(f"worker {worker.name} does not support {action}")

    async def cancel(self, task_id: str) -> TaskRecord:
        await self._settle_launch(task_id)
        record = await self.get(task_id)
        self._check_supported(record, "cancel")
        handle = self._running.get(task_id)
        if handle is None:
            moved = await self.store.transition(
                task_id,
                [Status.QUEUED, Status.PAUSED],
                Status.CANCELED,
                fields={"finished_at": clock.now(), "error": "canceled"},
            )
            if not moved:
                return await self._refused(task_id, "cancel")
            self._announce(task_id, record.worker, "Canceled", record.chain_id)
            return await self.get(task_id)
        handle.cancel("canceled")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(handle.finished(), self.settings.cancel_wait_seconds)
        return await self.get(task_id)

    async def pause(self, task_id: str) -> TaskRecord:
        await self._settle_launch(task_id)
        record = await self.get(task_id)
        self._check_supported(record, "pause")
        handle = self._running.get(task_id)
        if handle is None:
            moved = await self.store.transition(task_id, [Status.QUEUED], Status.PAUSED)
        else:
            moved = await self.store.transition(
                task_id, [Status.RUNNING], Status.PAUSED, owner=self.owner
            )
            if moved:
                handle.pause()
                if handle.deadline is not None:
                    handle.deadline.stop()
        if not moved:
            return await self._refused(task_id, "pause")
        self._announce(task_id, record.worker, "Paused", record.chain_id)
        return await self.get(task_id)

    async def resume(self, task_id: str) -> TaskRecord:
        await self._settle_launch(task_id)
        record = await self.get(task_id)
        self._check_supported(record, "resume")
        handle = self._running.get(task_id)
        lane = self._lanes.get(record.worker)
        if handle is None:
            moved = await self.store.transition(
                task_id, [Status.PAUSED], Status.QUEUED, fields={"queued_at": clock.now()}
            )
            if moved and lane is not None:
                self._enqueue(lane, task_id)
            new_status = "Queued"
        else:
            moved = await self.store.transition(
                task_id, [Status.PAUSED], Status.RUNNING, owner=self.owner
            )
            if moved:
                handle.resume()
                if handle.deadline is not None:
                    handle.deadline.start()
            new_status = "Running"
        if not moved:
            return await self._refused(task_id, "resume")
        self._announce(task_id, record.worker, new_status, record.chain_id)
        return await self.get(task_id)

    async def rerun(self, task_id: str) -> TaskRecord:
        self.refuse_new_work()
        record = await self.get(task_id)
        self._check_supported(record, "run")
        lane = self._lanes.get(record.worker)
        if lane is None:
            raise Unsupported(f"worker {record.worker} is not registered on this server")
        if record.status in FINISHED:
            await self._admit(lane)  # a re-run waits in the queue like a new task
        fields = _requeue_fields(record, clock.now(), None)
        moved = await self.store.transition(task_id, list(FINISHED), Status.QUEUED, fields=fields)
        if not moved:
            return await self._refused(task_id, "run")
        self._announce(task_id, record.worker, "Queued", record.chain_id)
        self._enqueue(lane, task_id)
        return await self.get(task_id)

    async def update_config(self, task_id: str, config: Any) -> TaskRecord:
        await self._settle_launch(task_id)
        record = await self.get(task_id)
        worker = self.worker(record.worker)
        if record.status not in (Status.QUEUED, Status.PAUSED) or task_id in self._running:
            raise IllegalMove(record.status, "update (only a task that has not started can be)")
        model = self.validate(worker, keep_secrets(worker.Config, config, record.config))
        moved = await self.store.transition(
            task_id,
            [record.status],
            record.status,
            fields={"config": stored_config(model)},
        )
        if not moved:
            return await self._refused(task_id, "update")
        return await self.get(task_id)

    async def _refused(self, task_id: str, action: str) -> TaskRecord:
        """The status changed under us: report the move as illegal from what it is now."""
        current = await self.get(task_id)
        raise IllegalMove(current.status, action)

    # -- announcements ----------------------------------------------------------------------------
    def add_listener(self, listener: StatusListener) -> None:
        """Call ``listener(task_id, worker, status, chain_id)`` after every committed status change.

        Listeners run in the event loop and must not block (chains use this to advance).
        """
        self._listeners.append(listener)

    def _announce(
        self, task_id: str, worker: str, status: str, chain_id: str | None, **extra: Any
    ) -> None:
        lane = self._lanes.get(worker)
        if lane is not None:
            lane.counters.ended(status)  # only finished statuses count (see WorkerCounters)
        self.events.publish(
            "task.status", task=task_id, worker=worker, status=status, chain=chain_id, **extra
        )
        for listener in self._listeners:
            try:
                listener(task_id, worker, Status(status), chain_id)
            except Exception:
                log.exception("a status listener failed")

    # -- progress and logs (ContextSink; may be called from worker threads) ----------------------
    def progress(self, task_id: str, fraction: float | None, message: str | None) -> None:
        self._call_in_loop(self._on_progress, task_id, fraction, message)

    def log(self, task_id: str, line: str) -> None:
        self._call_in_loop(self._on_log, task_id, clock.now(), line)

    def _call_in_loop(self, func: Any, *args: Any) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            func(*args)
        else:
            loop.call_soon_threadsafe(func, *args)

    def _on_progress(self, task_id: str, fraction: float | None, message: str | None) -> None:
        handle = self._running.get(task_id)
        if handle is None:
            return
        self._progress[task_id] = (fraction, message)
        self.events.publish(
            "task.progress",
            task=task_id,
            worker=handle.record.worker,
            chain=handle.record.chain_id,
            progress=fraction,
            message=message,
        )

    def _on_log(self, task_id: str, ts: float, line: str) -> None:
        self._log_lines.append((task_id, ts, line))
        handle = self._running.get(task_id)
        self.events.publish(
            "task.log",
            task=task_id,
            worker=handle.record.worker if handle else None,
            chain=handle.record.chain_id if handle else None,
            line=line,
            ts=ts,
        )

    async def _flush_task(self, task_id: str) -> None:
        """Queue this task's pending progress and log lines ahead of its final write."""
        lines = [entry for entry in self._log_lines if entry[0] == task_id]
        if lines:
            self._log_lines = [entry for entry in self._log_lines if entry[0] != task_id]
            self._spawn(self.store.append_logs(lines, self.settings.max_log_lines))
            # One yield lets the spawned write reach the store's FIFO writer queue before the
            # final transition does, so whoever sees the task finished also sees all its lines.
            await asyncio.sleep(0)
        self._progress.pop(task_id, None)

    async def _flush(self) -> None:
        # Each batch is taken right before its write is queued, with no await in between, so a
        # task's final transition (queued later) cannot overtake lines or progress taken here.
        lines, self._log_lines = self._log_lines, []
        if lines:
            await self.store.append_logs(lines, self.settings.max_log_lines)
        progress, self._progress = self._progress, {}
        if progress:
            await self.store.set_progress([(k, f, m) for k, (f, m) in progress.items()])

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(_FLUSH_INTERVAL)
            try:
                await self._flush()
            except Exception:
                log.exception("writing progress and logs failed")

    async def _heartbeat_loop(self) -> None:
        interval = self.settings.lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            ids = list(self._running)
            if ids:
                try:
                    await self.store.heartbeat(
                        self.owner, ids, clock.now() + self.settings.lease_seconds
                    )
                except Exception:
                    log.exception("extending leases failed")

    def live_progress(self, task_id: str) -> tuple[float | None, str | None] | None:
        """Progress not yet written to the store (newest), if any."""
        return self._progress.get(task_id)

    def is_running_here(self, task_id: str) -> bool:
        return task_id in self._running

    def running_ids(self) -> Sequence[str]:
        return list(self._running)


def _log_failed(record: TaskRecord, error: str | None) -> None:
    """The server log's one line per failed task (the log formatter keeps it on one line)."""
    log.warning(
        "task %s (worker %s) failed: %s",
        record.id,
        record.worker,
        error,
        extra=task_fields(record.id, record.worker),
    )


def _requeue_fields(record: TaskRecord, now: float, error: str | None) -> dict[str, Any]:
    return {
        "attempt": record.attempt + 1,
        "queued_at": now,
        "started_at": None,
        "finished_at": None,
        "owner": None,
        "lease_until": None,
        "run_after": None,
        "progress": None,
        "progress_message": None,
        "result": None,
        "error": error,
    }
