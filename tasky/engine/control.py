"""The actions on a task (the seed's cancel, pause, resume and run) and config updates.

A task running here is controlled through its run handle and the store is told with the owner's
compare-and-set; a task that holds no slot (Queued, or Paused before it started) only needs the
store. A task that another node runs is asked of that node through the store (a request it takes
when woken, or on its next poll, see tasky.engine.peers), and the answer waits, as long as a
cancel here would, for the move to show. A move that lost a race changes nothing and is reported
from the status the task has now.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from tasky import clock
from tasky.engine.announce import Announcer
from tasky.engine.dispatch import Dispatcher
from tasky.engine.drain import Drain
from tasky.engine.errors import Unsupported
from tasky.engine.handle import RunHandle
from tasky.engine.lanes import Lane
from tasky.engine.lookup import find_task, find_worker
from tasky.engine.runs import Runs
from tasky.engine.submit import Submitter
from tasky.settings import Settings
from tasky.states import FINISHED, IllegalMove, Status, check_action
from tasky.store.base import Store
from tasky.store.records import TaskRecord
from tasky.workers.registry import WorkerRegistry
from tasky.workers.secrets import keep_secrets, stored_config
from tasky.workers.strict import validate_config


class Control:
    def __init__(
        self,
        store: Store,
        owner: str,
        registry: WorkerRegistry,
        lanes: Mapping[str, Lane],
        runs: Runs,
        dispatcher: Dispatcher,
        submitter: Submitter,
        announcer: Announcer,
        drain: Drain,
        settings: Settings,
    ) -> None:
        self._store = store
        self._owner = owner
        self._registry = registry
        self._lanes = lanes
        self._runs = runs
        self._dispatcher = dispatcher
        self._submitter = submitter
        self._announcer = announcer
        self._drain = drain
        self._settings = settings

    async def action(self, task_id: str, action: str) -> TaskRecord:
        handlers: dict[str, Callable[[str], Awaitable[TaskRecord]]] = {
            "cancel": self.cancel,
            "pause": self.pause,
            "resume": self.resume,
            "run": self.rerun,
        }
        if action not in handlers:
            raise Unsupported(f"unknown action {action!r}; use one of {', '.join(handlers)}")
        return await handlers[action](task_id)

    async def get(self, task_id: str) -> TaskRecord:
        return await find_task(self._store, task_id)

    async def _current(self, task_id: str) -> TaskRecord:
        """The task as it is, once a claim of it in flight here has started it (between the
        claim and the launch it is Running in the store with no handle here yet)."""
        record = await self.get(task_id)
        lane = self._lanes.get(record.worker)
        in_flight = (
            record.owner == self._owner
            and self._runs.get(task_id) is None
            and lane is not None
            and lane.claiming is not None
        )
        if in_flight and lane is not None:
            await self._dispatcher.settle(lane)
            record = await self.get(task_id)
        return record

    def _check_supported(self, record: TaskRecord, action: str) -> None:
        worker = self._registry.get(record.worker)
        if worker is None:
            raise Unsupported(f"worker {record.worker} is not registered on this server")
        check_action(record.status, action)
        # Pausing a queued task only holds it back, which every worker allows.
        if action in ("pause", "resume") and _waiting(record):
            return
        if not worker.supports(action):
            raise Unsupported(f"worker {worker.name} does not support {action}")

    async def cancel(self, task_id: str) -> TaskRecord:
        record = await self._current(task_id)
        self._check_supported(record, "cancel")
        handle = self._runs.get(task_id)
        if handle is None and self._elsewhere(record):
            return await self._ask_owner(record, "cancel", lambda r: not _held(r))
        if handle is None:
            if await self._store.cancel(task_id, clock.now()):
                self._announcer.status(task_id, record.worker, "Canceled", record.chain_id)
                return await self.get(task_id)
            handle = await self._claimed_meanwhile(task_id, "cancel")
        handle.cancel("canceled")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(handle.finished(), self._settings.cancel_wait_seconds)
        return await self.get(task_id)

    async def pause(self, task_id: str) -> TaskRecord:
        record = await self._current(task_id)
        self._check_supported(record, "pause")
        handle = self._runs.get(task_id)
        if handle is None and self._elsewhere(record):
            return await self._ask_owner(record, "pause", lambda r: r.status is not Status.RUNNING)
        moved = False
        if handle is None:
            moved = await self._store.pause(task_id, None, clock.now())
            if not moved:
                handle = await self._claimed_meanwhile(task_id, "pause")
        if handle is not None:
            moved = await self._store.pause(task_id, self._owner, clock.now())
            if moved:
                handle.pause()
                if handle.deadline is not None:
                    handle.deadline.stop()
        if not moved:
            return await self._refused(task_id, "pause")
        self._announcer.status(task_id, record.worker, "Paused", record.chain_id)
        return await self.get(task_id)

    async def resume(self, task_id: str) -> TaskRecord:
        record = await self._current(task_id)
        self._check_supported(record, "resume")
        handle = self._runs.get(task_id)
        if handle is None and self._elsewhere(record):
            return await self._ask_owner(record, "resume", lambda r: r.status is not Status.PAUSED)
        if handle is None:
            moved = await self._store.resume(task_id, None, clock.now())
            lane = self._lanes.get(record.worker)
            if moved and lane is not None:
                lane.wake()
            new_status = "Queued"
        else:
            moved = await self._store.resume(task_id, self._owner, clock.now())
            if moved:
                handle.resume()
                if handle.deadline is not None:
                    handle.deadline.start()
            new_status = "Running"
        if not moved:
            return await self._refused(task_id, "resume")
        self._announcer.status(task_id, record.worker, new_status, record.chain_id)
        return await self.get(task_id)

    async def rerun(self, task_id: str) -> TaskRecord:
        self._drain.refuse_new_work()
        record = await self.get(task_id)
        self._check_supported(record, "run")
        lane = self._lanes.get(record.worker)
        if lane is None:
            raise Unsupported(f"worker {record.worker} is not registered on this server")
        if record.status in FINISHED:
            await self._submitter.admit(lane)  # a re-run waits in the queue like a new task
        if not await self._store.rerun(task_id, clock.now()):
            return await self._refused(task_id, "run")
        self._announcer.status(task_id, record.worker, "Queued", record.chain_id)
        lane.wake()
        return await self.get(task_id)

    async def update_config(self, task_id: str, config: Any) -> TaskRecord:
        record = await self._current(task_id)
        worker = find_worker(self._registry, record.worker)
        if not _waiting(record):
            raise IllegalMove(record.status, "update (only a task that has not started can be)")
        model = validate_config(worker.Config, keep_secrets(worker.Config, config, record.config))
        if not await self._store.update_config(task_id, stored_config(model)):
            return await self._refused(task_id, "update")
        return await self.get(task_id)

    def _elsewhere(self, record: TaskRecord) -> bool:
        """The task holds a slot that another node owns: only that node can act on its run."""
        return _held(record) and record.owner is not None and record.owner != self._owner

    async def _ask_owner(
        self, record: TaskRecord, action: str, done: Callable[[TaskRecord], bool]
    ) -> TaskRecord:
        """Ask the node running the task to ``action`` it, and wait (as a cancel here waits for
        the work to stop) until ``done`` says it did; the task as it is then."""
        assert record.owner is not None
        asked = await self._store.request_action(
            record.id, record.owner, record.attempt, action, clock.now()
        )
        if not asked:
            # Its attempt ended or moved on meanwhile: act on the task as it is now.
            current = await self.get(record.id)
            if self._elsewhere(current) and (current.owner, current.attempt) != (
                record.owner,
                record.attempt,
            ):
                return await self._ask_owner(current, action, done)
            if self._elsewhere(current):
                return await self._refused(record.id, action)
            return await self.action(record.id, action)
        deadline = clock.monotonic() + self._settings.cancel_wait_seconds
        pause = 0.01
        current = record
        while True:
            current = await self.get(record.id)
            if done(current) or clock.monotonic() >= deadline:
                return current
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.2)

    async def _claimed_meanwhile(self, task_id: str, action: str) -> RunHandle:
        """A move of a waiting task was refused: if a claim started the task here meanwhile,
        its handle (the action applies to the running task); IllegalMove otherwise."""
        record = await self._current(task_id)
        handle = self._runs.get(task_id)
        if handle is None:
            raise IllegalMove(record.status, action)
        self._check_supported(record, action)
        return handle

    async def _refused(self, task_id: str, action: str) -> TaskRecord:
        """The status changed under us: report the move as illegal from what it is now."""
        current = await self.get(task_id)
        raise IllegalMove(current.status, action)


def _held(record: TaskRecord) -> bool:
    """Running, or Paused after it started: the task holds a slot (and has an owner)."""
    return record.status is Status.RUNNING or (
        record.status is Status.PAUSED and record.owner is not None
    )


def _waiting(record: TaskRecord) -> bool:
    """Queued, or Paused before it started: the task holds no slot (and has no owner)."""
    return record.status is Status.QUEUED or (
        record.status is Status.PAUSED and record.owner is None
    )
