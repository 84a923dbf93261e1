"""Submits: a config checked, a task stored, and started at once when a slot is free.

A submit that finds a free slot and no queued task known to wait asks the store to start its
task in the same write (a claim rides along with the insert): the task starts the moment it is
committed, with no second write and no claim round trip. Otherwise (or if the store finds a task
waiting ahead of it) the task is stored Queued, within the worker's queue cap, and dispatched.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from tasky import clock
from tasky.engine.admission import admit, admit_counted
from tasky.engine.announce import Announcer
from tasky.engine.dispatch import Dispatcher
from tasky.engine.drain import Drain
from tasky.engine.errors import BatchInvalid, NotWritten, WorkerDisabled
from tasky.engine.lanes import Lane
from tasky.engine.launch import Launcher
from tasky.ids import is_valid_id, new_id, new_ids
from tasky.settings import Settings
from tasky.states import Status
from tasky.store.base import Store
from tasky.store.records import Claim, IdempotencyRecord, TaskRecord
from tasky.workers.base import Worker
from tasky.workers.secrets import stored_config, stored_configs
from tasky.workers.strict import validate_config, validate_configs

# A submit's write done by its caller: store the task (started with the claim, as Store.submit)
# together with writes of the caller's own in one transaction, or None when those find their
# condition unmet (nothing written). Chains start a step in the commit of the step before it.
SubmitWrite = Callable[[TaskRecord, Claim | None], Awaitable[TaskRecord | None]]


class Submitter:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        lanes: Mapping[str, Lane],
        dispatcher: Dispatcher,
        launcher: Launcher,
        announcer: Announcer,
        drain: Drain,
    ) -> None:
        self._store = store
        self._settings = settings
        self._lanes = lanes
        self._dispatcher = dispatcher
        self._launcher = launcher
        self._announcer = announcer
        self._drain = drain

    def queue_limit(self, worker: Worker) -> int:
        return worker.max_queued or self._settings.max_queued

    async def admit(self, lane: Lane, n: int = 1) -> None:
        """Raise QueueFull unless ``n`` more tasks may wait for the worker."""
        await admit(
            lane.count, self._store, lane.name, self.queue_limit(lane.worker), lane.admitting, n
        )

    async def submit(
        self,
        worker: Worker,
        config: Any,
        timeout: float | None,
        retries: int | None,
        chain_id: str | None,
        task_id: str | None,
        key: IdempotencyRecord | None = None,
        target: str | None = None,
        write: SubmitWrite | None = None,
        answer_first: bool = False,
    ) -> TaskRecord | IdempotencyRecord:
        """``key``: the caller's Idempotency-Key; when it is taken nothing is created and the
        key's record is returned. ``write``: stores the task instead of the store's submit (no
        ``key`` then); NotWritten when it wrote nothing. ``answer_first``: count, announce and
        launch the task (:meth:`_created`) in the event loop's next step, after the caller's
        answer is out."""
        self._check_open(worker)
        if task_id is not None and not is_valid_id(task_id):
            raise ValueError(f"not a task id: {task_id!r}")
        model = validate_config(worker.Config, config)
        lane = self._lanes[worker.name]
        record = self._record(worker, model, timeout, retries, chain_id, task_id, clock.now())
        record.target = target
        reserved = 0
        if self._dispatcher.may_start_at_once(lane):
            reserved = lane.slots.reserve(1)
        elif not admit_counted(lane.count, self.queue_limit(lane.worker)):
            await self.admit(lane)  # QueueFull when the worker's queue is at its cap
        claim = (
            self._dispatcher.new_claim(record.created_at, worker.max_tasks) if reserved else None
        )
        lane.admitting += 1 - reserved
        try:
            if write is not None:
                written = await write(record, claim)
                if written is None:
                    raise NotWritten(f"task {record.id} was not created: its condition failed")
                stored: TaskRecord | IdempotencyRecord = written
            elif key is None:
                stored = await self._store.submit(record, claim)
            else:
                stored = await self._store.submit_with_key(record, key, claim)
        except BaseException:
            lane.slots.unreserve(reserved)
            raise
        finally:
            lane.admitting -= 1 - reserved
        if not isinstance(stored, TaskRecord):  # a concurrent request with the same key won
            lane.slots.unreserve(reserved)
            return stored
        models = {stored.id: model} if reserved else {}
        acked = clock.monotonic()
        if answer_first:
            # The caller's answer leaves first: from here to the answer's send is only the
            # handler's return and the response, and this bookkeeping (the counters, the
            # task.created event, the task's launch or the dispatcher's wake-up; 9-11 us of a
            # lone submit at a slow pace, bench/README.md) no longer comes before it. It runs
            # in the loop's next step, before any request the loop reads next (a cancel of this
            # task right behind the submit included: tests/test_submit_answer_first.py).
            loop = asyncio.get_running_loop()
            loop.call_soon(self._created, lane, [stored], models, reserved, acked)
        else:
            self._created(lane, [stored], models, reserved, acked)
        return stored

    async def submit_many(
        self,
        worker: Worker,
        configs: Sequence[Any],
        timeout: float | None,
        retries: int | None,
        key: IdempotencyRecord | None = None,
        targets: Sequence[str | None] | None = None,
    ) -> list[TaskRecord] | IdempotencyRecord:
        """All of ``configs`` as tasks in one transaction, or none (see Engine.submit_many).
        ``key``: as for :meth:`submit`; when it is taken nothing is created. ``targets``: each
        task's target (None: all untargeted)."""
        self._check_open(worker)
        models, invalid = validate_configs(worker.Config, configs)
        if invalid:
            raise BatchInvalid(invalid)
        if not models and key is None:
            return []
        lane = self._lanes[worker.name]
        now = clock.now()
        records = self._records(worker, models, timeout, retries, now, targets)
        reserved = 0
        if self._dispatcher.may_start_at_once(lane):
            reserved = lane.slots.reserve(len(records))
        waiting = len(records) - reserved
        if waiting:
            try:
                await self.admit(lane, waiting)
            except BaseException:
                lane.slots.unreserve(reserved)
                raise
        claim = self._dispatcher.new_claim(now, worker.max_tasks, reserved) if reserved else None
        lane.admitting += waiting
        try:
            if key is None:
                found: list[TaskRecord] | IdempotencyRecord = await self._store.submit_many(
                    records, claim
                )
            else:
                found = await self._store.submit_many_with_key(records, key, claim)
        except BaseException:
            lane.slots.unreserve(reserved)
            raise
        finally:
            lane.admitting -= waiting
        if not isinstance(found, list):  # a concurrent request with the same key won
            lane.slots.unreserve(reserved)
            return found
        stored = found
        models_by_id = {r.id: m for r, m in zip(records, models, strict=True)} if reserved else {}
        self._created(lane, stored, models_by_id, reserved, clock.monotonic())
        return stored

    def _check_open(self, worker: Worker) -> None:
        self._drain.refuse_new_work()
        if not worker.enabled:
            raise WorkerDisabled(f"worker {worker.name} is disabled")

    def _record(
        self,
        worker: Worker,
        model: BaseModel,
        timeout: float | None,
        retries: int | None,
        chain_id: str | None,
        task_id: str | None,
        now: float,
    ) -> TaskRecord:
        return TaskRecord(
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

    def _records(
        self,
        worker: Worker,
        models: Sequence[BaseModel],
        timeout: float | None,
        retries: int | None,
        now: float,
        targets: Sequence[str | None] | None,
    ) -> list[TaskRecord]:
        """:meth:`_record` of each model of a batch (no chain, new ids), with its target: the
        configs dumped and the ids drawn once for all (see stored_configs, new_ids)."""
        name = worker.name
        retries = worker.retries if retries is None else retries
        timeout = worker.timeout if timeout is None else timeout
        configs = stored_configs(worker.Config, models)
        ids = new_ids(len(models))
        return [
            TaskRecord(
                id=task_id,
                worker=name,
                status=Status.QUEUED,
                config=config,
                created_at=now,
                queued_at=now,
                retries=retries,
                timeout=timeout,
                target=target,
            )
            for task_id, config, target in zip(
                ids, configs, targets or [None] * len(ids), strict=True
            )
        ]

    def _created(
        self,
        lane: Lane,
        stored: Sequence[TaskRecord],
        models: Mapping[str, BaseModel],
        reserved: int,
        acked: float,
    ) -> None:
        """Committed (at ``acked``, the monotonic clock): announce the new tasks, start those
        the store started, give back the slots it did not use and dispatch those it queued."""
        lane.counters.submitted += len(stored)
        queued = False
        self._announcer.created(stored)
        for record in stored:
            if record.status is Status.RUNNING:
                reserved -= 1
                self._launcher.launch_submitted(lane, record, models[record.id], acked)
            else:
                queued = True
        lane.slots.unreserve(reserved)
        if queued:
            lane.wake()
