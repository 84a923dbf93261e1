"""The engine: runs the tasks the store holds, within each worker's limits, and controls them.

It is composed of parts with one job each: lanes and slots (tasky.engine.lanes), submits
(submit), dispatch by claims (dispatch), starting runs (launch), outcomes and retries
(outcomes), output buffering (output), leases (leases), recovery at start (recovery), control
actions (control) and graceful shutdown (drain). The store is the queue of record; the engine
keeps in memory only the slots it holds and the handles of the runs it started; other nodes
sharing the store are heard through it (peers).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import BaseModel

from tasky import clock
from tasky.engine.announce import Announcer, FinishingListener, StatusListener
from tasky.engine.background import Background
from tasky.engine.control import Control
from tasky.engine.counters import WorkerCounters
from tasky.engine.dispatch import Dispatcher
from tasky.engine.drain import Drain
from tasky.engine.errors import NoNodeForTarget
from tasky.engine.events import EventHub
from tasky.engine.lanes import Lane
from tasky.engine.launch import Launcher
from tasky.engine.leases import heartbeat_loop, sweep_loop
from tasky.engine.lookup import find_task, find_worker
from tasky.engine.nodes import Presence, is_alive
from tasky.engine.outcomes import Outcomes
from tasky.engine.output import Output
from tasky.engine.peers import Peers
from tasky.engine.recovery import recover, release_held
from tasky.engine.runs import Runs
from tasky.engine.submit import Submitter, SubmitWrite
from tasky.net.addresses import OutboundPolicy
from tasky.own_files import file_roots
from tasky.settings import Settings
from tasky.states import Status
from tasky.store.base import Store
from tasky.store.records import (
    AttemptRecord,
    IdempotencyRecord,
    LogLine,
    NodeRecord,
    TaskPage,
    TaskRecord,
    WorkerStats,
)
from tasky.workers.base import Worker
from tasky.workers.registry import WorkerRegistry
from tasky.workers.strict import validate_config

log = logging.getLogger("tasky.engine")


class Engine:
    def __init__(self, store: Store, registry: WorkerRegistry, settings: Settings) -> None:
        self.store = store
        self.registry = registry
        self.settings = settings
        self.owner = settings.node_id
        self.events = EventHub()
        self._background = Background()
        self._dispatcher = Dispatcher(store, settings, self._background)
        self._lanes = {w.name: Lane(w, self._dispatcher.dispatch) for w in registry}
        self._runs = Runs()
        self._presence = Presence(store, settings, [w.name for w in registry])
        self._announcer = Announcer(self.events, self._lanes)
        self._output = Output(store, self._runs, self.events, self._background, settings)
        # Enough threads for every thread-mode slot, so a started task never waits for a thread
        # (a paused thread-mode task keeps its thread while it waits at a checkpoint).
        thread_slots = sum(w.max_tasks for w in registry if w.execution_mode() == "thread")
        self._pool = ThreadPoolExecutor(max(settings.thread_pool_size, thread_slots), "tasky-work")
        self._outcomes = outcomes = Outcomes(
            store, self.owner, self._runs, self._output, self._announcer, self._background
        )
        self._launcher = Launcher(
            self._runs,
            self._output,
            self._announcer,
            self._background,
            self._pool,
            file_roots(settings),
            OutboundPolicy.parse(settings.outbound_allow),
            outcomes.ended,
        )
        self._dispatcher.attach(self._lanes, self._launcher)
        self._drain = Drain(self._lanes, self._runs, self._dispatcher)
        self._submitter = Submitter(
            store,
            settings,
            self._lanes,
            self._dispatcher,
            self._launcher,
            self._announcer,
            self._drain,
        )
        self._control = Control(
            store,
            self.owner,
            registry,
            self._lanes,
            self._runs,
            self._dispatcher,
            self._submitter,
            self._announcer,
            self._drain,
            settings,
        )
        self._peers = Peers(
            store,
            self.owner,
            self._lanes,
            self._runs,
            self.events,
            self._background,
            settings.poll_interval,
            {
                "cancel": self._control.cancel,
                "pause": self._control.pause,
                "resume": self._control.resume,
            },
        )
        self.action = self._control.action
        self.cancel = self._control.cancel
        self.pause = self._control.pause
        self.resume = self._control.resume
        self.rerun = self._control.rerun
        self.update_config = self._control.update_config
        self.drain = self._drain.drain
        self.refuse_new_work = self._drain.refuse_new_work
        self.busy = self._drain.busy
        self.wait_idle = self._drain.wait_idle
        self.hurry = self._drain.hurry
        self.live_progress = self._output.live_progress
        self.queue_limit = self._submitter.queue_limit

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        await self._presence.register()  # NodeNameTaken: another live node has this name
        # Registered: no other live process has this node's name, so what an owner of this name
        # holds was left by an earlier run here.
        await recover(self.store, self._lanes, self.owner, self.settings.node)
        self._output.start()
        self._background.spawn(
            heartbeat_loop(self.store, self.owner, self._runs, self.settings.lease_seconds)
        )
        self._background.spawn(self._presence.heartbeat_loop())
        if self.store.shared:
            self._background.spawn(
                sweep_loop(
                    self.store,
                    self._lanes,
                    self.owner,
                    self.settings.sweep_interval,
                    self._taken,
                )
            )
        self._dispatcher.start()
        await self._peers.start()
        # Start-up claims (what the store holds for free slots) are done before start returns: a
        # submit right after start then finds its lane idle and may start its task at once,
        # rather than being queued because a claim is still in flight.
        await self._dispatcher.settle_all()

    async def stop(self) -> None:
        """Stop what still runs. On a store of its own, without deciding the fate of that work:
        the next start recovers it. On a shared store, its leases are released at once (each
        task re-queued or failed as recovery would), so another node takes it without waiting
        for the lease to run out."""
        self._dispatcher.halted = self._dispatcher.stopping = True
        self._background.stop_timers()
        await self._dispatcher.settle_all()
        abandoned = self._runs.handles()
        for handle in abandoned:
            handle.abandon(now=self._drain.hurried)
        await self._drain.wait_stopped(abandoned)
        await self._background.stop_tasks()
        await self._output.flush()
        if self.store.shared:
            try:
                released = await release_held(self.store, self._lanes, self.owner, self._taken)
            except Exception:
                log.exception("releasing the tasks held here failed: their leases run out")
            else:
                if released:
                    log.info("released %d task(s) for the other nodes", released)
        self._pool.shutdown(wait=False, cancel_futures=True)
        await self._presence.stop()
        self.events.close()

    def _taken(self, task_id: str, worker: str, status: Status, chain_id: str | None) -> None:
        """A task taken back from a node that stopped: told like any other status change (a
        chain waiting on it advances; a re-queued one may be claimed here)."""
        self._announcer.status(task_id, worker, status.value, chain_id)
        lane = self._lanes.get(worker)
        if status is Status.QUEUED and lane is not None:
            lane.wake()

    @property
    def draining(self) -> bool:
        return self._drain.draining

    @property
    def dispatch_latencies(self) -> deque[float]:
        """Submit-acknowledged -> work-started intervals (monotonic seconds), newest last."""
        return self._launcher.dispatch_latencies

    def add_listener(self, listener: StatusListener) -> None:
        """Call ``listener(task_id, worker, status, chain_id)`` after every committed status change.

        Listeners run in the event loop and must not block (chains use this to advance).
        """
        self._announcer.add_listener(listener)

    def add_finishing_listener(self, listener: FinishingListener) -> None:
        """Call ``listener(task, outcome)`` when the end of a chain's task is about to be
        written, before it commits: a write the listener queues, or a task it starts queues
        before its first real wait, joins the finish's group commit (where the store has one).
        It must not block, and must not trust that the finish commits (chains make their write
        conditional on it)."""
        self._announcer.add_finishing_listener(listener)

    # -- lookups --------------------------------------------------------------------------------
    def worker(self, name: str) -> Worker:
        return find_worker(self.registry, name)

    async def get(self, task_id: str) -> TaskRecord:
        return await find_task(self.store, task_id)

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
        worker_name = self.worker(worker).name if worker is not None else None
        return await self.store.list_tasks(
            status=status,
            worker=worker_name,
            chain_id=chain_id,
            limit=limit,
            cursor=cursor,
            descending=descending,
            id_prefix=id_prefix,
            created_after=created_after,
            created_before=created_before,
            error_contains=error_contains,
        )

    async def queue_positions(self, tasks: Sequence[TaskRecord]) -> dict[str, int]:
        """Where each Queued task of ``tasks`` stands in its worker's queue (1: the next to
        start), by task id; one store read per worker among them."""
        by_worker: dict[str, list[str]] = {}
        for task in tasks:
            if task.status is Status.QUEUED:
                by_worker.setdefault(task.worker, []).append(task.id)
        positions: dict[str, int] = {}
        for worker, ids in by_worker.items():
            positions.update(await self.store.queue_positions(worker, ids))
        return positions

    async def logs(self, task_id: str, after: int = 0, limit: int = 1000) -> list[LogLine]:
        await self.get(task_id)
        await self._output.flush()  # lines still in memory become readable too
        return await self.store.logs(task_id, after, limit)

    async def attempts(self, task_id: str) -> list[AttemptRecord]:
        return await self.store.attempts(task_id)

    async def worker_stats(self, name: str) -> WorkerStats:
        return await self.store.worker_stats(self.worker(name).name)

    async def finished_per_minute(self, name: str, since_minute: int) -> list[tuple[int, str, int]]:
        return await self.store.finished_per_minute(self.worker(name).name, since_minute)

    def running_count(self, name: str) -> int:
        """Tasks of the worker running here (a paused one that started counts)."""
        return self._lanes[self.worker(name).name].slots.running

    async def queued_count(self, name: str) -> int:
        """The worker's Queued tasks in the store (the queue of record)."""
        stats = await self.store.worker_stats(self.worker(name).name)
        return stats.by_status.get(Status.QUEUED.value, 0)

    def counters(self, name: str) -> WorkerCounters:
        """What this engine counted live for the worker (submits, outcomes, queue waits)."""
        return self._lanes[self.worker(name).name].counters

    # -- nodes ----------------------------------------------------------------------------------
    async def nodes(self) -> list[tuple[NodeRecord, bool]]:
        """Every node registered on the store, by name, with whether it is alive now."""
        now = clock.now()
        lease = self.settings.lease_seconds
        return [(node, is_alive(node, now, lease)) for node in await self.store.list_nodes()]

    async def nodes_for(self, worker_name: str, target: str | None = None) -> list[NodeRecord]:
        """The live nodes that serve the worker and that ``target`` matches (None: every one)."""
        worker = self.worker(worker_name).name
        return [
            node
            for node, alive in await self.nodes()
            if alive and worker in node.workers and _matches(node, target)
        ]

    async def check_target(self, worker_name: str, target: str) -> None:
        """Raise NoNodeForTarget unless a live node serving the worker matches ``target``."""
        if not await self.nodes_for(worker_name, target):
            kind, _, name = target.partition(":")
            raise NoNodeForTarget(
                f"no live node {'named' if kind == 'node' else 'labelled'} {name} serves worker "
                f"{self.worker(worker_name).name}; add wait_for_node=true to queue the task "
                "until one does"
            )

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
        target: str | None = None,
        write: SubmitWrite | None = None,
        answer_first: bool = False,
    ) -> TaskRecord:
        """``task_id``: an id chosen beforehand (chains record a step's id before submitting it,
        so a crash in between cannot create the step twice); a new one otherwise. ``target``:
        where the task may run ("node:NAME", "label:LABEL"; None: any node). ``write``: stores
        the task with the caller's own writes in one transaction (see SubmitWrite); NotWritten
        when it wrote nothing. ``answer_first``: the task is counted, announced and launched in
        the event loop's next step, so that the caller can answer first (the HTTP submit)."""
        worker = self.worker(worker_name)
        created = await self._submitter.submit(
            worker,
            config,
            timeout,
            retries,
            chain_id,
            task_id,
            target=target,
            write=write,
            answer_first=answer_first,
        )
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
        target: str | None = None,
    ) -> TaskRecord | IdempotencyRecord:
        """Submit unless the caller's key is taken: then nothing is created and the key's record
        (what the first request created, and its fingerprint) is returned instead.

        ``key.target_id`` is ignored: the new task's id is recorded with the key, in the same
        transaction as the task. ``task_id`` as in :meth:`submit`.
        """
        worker = self.worker(worker_name)
        return await self._submitter.submit(
            worker, config, timeout, retries, None, task_id, key, target
        )

    async def submit_many(
        self,
        worker_name: str,
        configs: Sequence[Any],
        *,
        timeout: float | None = None,
        retries: int | None = None,
        targets: Sequence[str | None] | None = None,
    ) -> list[TaskRecord]:
        """Create one task per config, in order, in one transaction: all or none.

        Every config is validated first; if any is invalid, BatchInvalid names each bad index
        with its field errors and nothing is created. Refused as a single submit is (Draining,
        WorkerDisabled); the worker's queue cap applies to the whole batch (QueueFull). The
        first tasks start at once when the worker has free slots and nothing waits.
        """
        worker = self.worker(worker_name)
        created = await self._submitter.submit_many(
            worker, configs, timeout, retries, targets=targets
        )
        assert isinstance(created, list)  # no key, so never an earlier request's record
        return created

    async def submit_many_with_key(
        self,
        worker_name: str,
        configs: Sequence[Any],
        key: IdempotencyRecord,
        *,
        timeout: float | None = None,
        retries: int | None = None,
        targets: Sequence[str | None] | None = None,
    ) -> list[TaskRecord] | IdempotencyRecord:
        """:meth:`submit_many` unless the caller's key is taken: then nothing is created and the
        key's record is returned (its ``target_id`` holds the first batch's ids, see
        tasky.store.records.batch_ids). The batch's ids are recorded with the key in the same
        transaction as its tasks."""
        worker = self.worker(worker_name)
        return await self._submitter.submit_many(worker, configs, timeout, retries, key, targets)

    async def submit_everywhere(
        self,
        worker_name: str,
        config: Any,
        *,
        timeout: float | None = None,
        retries: int | None = None,
    ) -> dict[str, TaskRecord]:
        """One task per live node that serves the worker, each targeting its node, created in
        one transaction; keyed by node name. NoNodeForTarget when no live node serves it."""
        nodes = [node.name for node in await self.nodes_for(worker_name)]
        if not nodes:
            raise NoNodeForTarget(f"no live node serves worker {self.worker(worker_name).name}")
        created = await self.submit_many(
            worker_name,
            [config] * len(nodes),
            timeout=timeout,
            retries=retries,
            targets=[f"node:{name}" for name in nodes],
        )
        return dict(zip(nodes, created, strict=True))


def _matches(node: NodeRecord, target: str | None) -> bool:
    if target is None:
        return True
    kind, _, name = target.partition(":")
    return name == node.name if kind == "node" else name in node.labels
