"""The Store contract. The engine talks to storage only through this protocol.

Every write that changes a task's status is a compare-and-set on the status it expects (and, for
work a node owns, on owner + attempt), so a node that lost its lease cannot overwrite a task that
someone else now owns. An acknowledged write is durable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from tasky.states import Status
from tasky.store.chain_base import ChainStore
from tasky.store.records import (
    ActionRequest,
    AttemptEnd,
    AttemptRecord,
    AuditPage,
    AuditRecord,
    CallbackAttempt,
    CallbackRecord,
    ChildRecord,
    Claim,
    CommitStats,
    IdempotencyRecord,
    LogLine,
    NodeRecord,
    Outcome,
    ScheduleRecord,
    TaskChange,
    TaskPage,
    TaskRecord,
    TokenRecord,
    Wakeup,
    WorkerStats,
)


class StoreLocked(Exception):
    """Another Tasky server already uses this store."""


class DuplicateId(Exception):
    """A task or chain with this id exists already; nothing was written."""


def node_is_alive(known: NodeRecord, owner: str, alive_after: float) -> bool:
    """Whether ``known`` stops a process of ``owner`` from registering under its name: another
    process, not stopped, whose last heartbeat is not older than ``alive_after``."""
    return known.owner != owner and known.stopped_at is None and known.heartbeat_at >= alive_after


class Store(Protocol):
    # Whether other nodes may share this store (PostgreSQL): then a task held by an owner other
    # than this engine may be running elsewhere, and only a lease that ran out says it is not.
    # False: the store is this server's alone (an exclusive lock), so whatever is held at start
    # was left by a stopped server.
    shared: bool
    # Whether writes are committed in the order they were made (one writer): a claim made after
    # a finish then sees the slot that finish frees, so a claim may count on ends in flight.
    ordered_writes: bool

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    @property
    def chains(self) -> ChainStore:
        """This store's chains: kept in the same place as its tasks, written by the same writer
        (see tasky.store.chain_base)."""

    # -- task operations ------------------------------------------------------------------------
    # The queue of record is the store: a Queued task is runnable by any engine attached to it,
    # and a claim (never an in-memory list) decides who runs what. Each operation below moves a
    # status only as ``tasky.states.MOVES`` allows and returns whether it did (False: the task is
    # missing, or its status, owner or attempt is not what the operation expects). Column names
    # never leave the store. ``at`` is the caller's clock (``tasky.clock.now()``), so tests can
    # drive time. A task "holds a slot" from its claim until it ends (Running, or Paused after
    # it started; such a task has an owner); a worker's ``limit`` caps the tasks holding a slot,
    # over every owner. Queue order (FIFO per worker) is the order in which tasks (re)joined the
    # queue: submit, resume of a held-back task, re-run, re-queue after a crash, or for a retry
    # the end of its backoff; ties in submit order.

    async def submit(self, task: TaskRecord, claim: Claim | None = None) -> TaskRecord:
        """Insert one Queued task; returns once committed (concurrent submits share a commit).

        With ``claim``, the task starts at once (stored Running, owned by ``claim.owner``) when
        its worker holds fewer than ``claim.limit`` slots and no runnable task of the worker
        waits ahead of it; otherwise it is stored Queued like any other. Returns the task as
        stored. A duplicate id raises and writes nothing."""

    async def submit_with_key(
        self, task: TaskRecord, key: IdempotencyRecord, claim: Claim | None = None
    ) -> TaskRecord | IdempotencyRecord:
        """:meth:`submit`, and remember ``key`` for the task in the same transaction; unless the
        principal already holds an unexpired ``key``: then nothing is written and the stored
        key record is returned (its fingerprint says whether the request was the same)."""

    async def submit_many(
        self, tasks: Sequence[TaskRecord], claim: Claim | None = None
    ) -> list[TaskRecord]:
        """Insert all of ``tasks`` in one transaction, in order, or none of them (a duplicate id
        raises). ``claim`` as in :meth:`submit`, for each task in turn."""

    async def submit_many_with_key(
        self, tasks: Sequence[TaskRecord], key: IdempotencyRecord, claim: Claim | None = None
    ) -> list[TaskRecord] | IdempotencyRecord:
        """:meth:`submit_many`, and remember ``key`` for the batch in the same transaction (its
        ``target_id`` becomes :func:`~tasky.store.records.batch_target` of the ids); unless the
        principal already holds an unexpired ``key``: then nothing is written and the stored key
        record is returned."""

    def insert_many_now(self, tasks: Iterable[TaskRecord]) -> None:
        """Bulk insert outside the group-commit path (seeding, imports); rows as given."""

    async def claim(self, worker: str, claim: Claim, at: float) -> list[TaskRecord]:
        """Start the oldest runnable Queued tasks of ``worker`` (``run_after`` unset or not
        after ``at``), as many as its free slots (``claim.limit`` minus the tasks holding a slot)
        and at most ``claim.count``: each becomes Running, owned by ``claim.owner`` until
        ``claim.lease_until``, started at ``at``. Returns them in queue order. Two claims at once
        never hand out one task twice nor exceed the limit together."""

    async def next_runnable_at(
        self, worker: str, targets: Sequence[str] | None = None
    ) -> float | None:
        """When the worker's next Queued task becomes runnable (the earliest ``run_after``, or
        its queue time when it has none); None when none is Queued. With ``targets`` (a claim's,
        see :class:`Claim`), only among the tasks such a claim may take."""

    async def finish(
        self, task_id: str, owner: str, attempt: int, outcome: Outcome, lazy: bool = False
    ) -> bool:
        """End the attempt ``attempt`` that ``owner`` holds: the task becomes ``outcome.status``
        with its result, error and newest progress (Completed: progress 1), and the attempt is
        recorded (history, timing statistics, ``outcome.traceback``) in the same transaction.
        Refused (False) when the task is not held by ``owner`` at ``attempt``: a node whose lease
        moved on cannot overwrite the task. ``lazy``: nothing waits on this end at once (no
        chain step, no queued task of the worker), so a store may hold it a moment to commit it
        with the next write (SQLite: up to a millisecond); it is durable only once this returns."""

    async def finish_many(self, ends: Sequence[AttemptEnd], lazy: bool = False) -> list[bool]:
        """:meth:`finish` for each of ``ends`` (of distinct tasks), as if one after another;
        returns each one's answer, in order. Raises when the write failed: then any of them may
        or may not have been recorded. ``lazy`` as for :meth:`finish`, for all of them."""

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
        """The held attempt failed and will be retried: record it as Failed (with ``traceback``)
        and re-queue the task with attempt + 1, runnable from ``run_after``; ``error`` stays
        visible on the task until the next attempt ends. Compare-and-set as :meth:`finish`."""

    async def requeue_interrupted(
        self, task_id: str, owner: str | None, attempt: int, reason: str, at: float
    ) -> bool:
        """The attempt stopped with its node (a crash, an expired lease): record it as Failed
        with ``reason`` and re-queue the task with attempt + 1. Compare-and-set on the owner
        and attempt the caller saw (see :meth:`held_tasks`)."""

    async def fail_interrupted(
        self, task_id: str, owner: str | None, attempt: int, reason: str, at: float
    ) -> bool:
        """As :meth:`requeue_interrupted`, but the task ends Failed with ``reason`` (its worker
        is not safe to re-run, or is gone)."""

    async def cancel(self, task_id: str, at: float) -> bool:
        """Cancel a task that holds no slot (Queued, or Paused before it started). A running
        task is canceled by its owner's :meth:`finish` once its work has stopped."""

    async def pause(self, task_id: str, owner: str | None, at: float) -> bool:
        """``owner`` None: hold back a Queued task (Paused, keeps no slot). ``owner`` given:
        the owner paused its Running task at ``at`` (Paused, keeps its slot): its run time
        stops growing there (``TaskRecord.paused_at``)."""

    async def resume(self, task_id: str, owner: str | None, at: float) -> bool:
        """``owner`` None: a held-back task rejoins the queue at its end (Queued). ``owner``
        given: the owner resumed its paused task at ``at`` (Running); the pause's length joins
        the attempt's ``paused_seconds``, which run time leaves out. An attempt that ends while
        Paused (e.g. canceled) ran until its pause: the operations that end attempts count the
        pause up to the end, in the task and in the attempt's record and statistics."""

    async def rerun(self, task_id: str, at: float) -> bool:
        """Queue a finished task again (the seed's ``run`` action): attempt + 1, result, error,
        progress and times of the previous attempt cleared; it joins the queue at its end."""

    async def update_config(self, task_id: str, config: Any) -> bool:
        """Replace the config of a task that has not started (Queued, or Paused before it
        started); its status and place in the queue stay."""

    async def heartbeat(self, owner: str, task_ids: Sequence[str], lease_until: float) -> int:
        """Extend the leases ``owner`` holds on these tasks; returns how many it still holds."""

    async def release(self, owner: str) -> int:
        """``owner`` is stopping: expire its leases now, so another engine's recovery takes
        its tasks without waiting for the leases to run out. Returns how many it held."""

    async def held_tasks(self, expired_before: float | None = None) -> list[TaskRecord]:
        """Tasks that hold a slot, oldest first: all of them (``expired_before`` None: on one
        node, at start, every one was left by a stopped server), or those whose lease ended
        before ``expired_before``."""

    async def set_progress(self, updates: Sequence[tuple[str, float | None, str | None]]) -> None:
        """Record the latest (task id, fraction, message) of running tasks."""

    async def append_logs(self, lines: Sequence[tuple[str, float, str]], max_lines: int) -> None:
        """Append (task id, time, line) rows, keeping at most ``max_lines`` per task."""

    async def record_child(self, child: ChildRecord) -> None:
        """Remember a running task's child process group (one per task; a new one replaces it)."""

    async def forget_children(self, task_ids: Sequence[str]) -> None:
        """The children of these tasks are gone: stop remembering them."""

    # -- many nodes on one store ----------------------------------------------------------------
    # Nodes that share a store (PostgreSQL) hear from each other through it. Wake-ups are hints
    # only: a node that misses one still finds the work by polling (next_runnable_at,
    # take_requests, changes_since). A store one node uses alone never sends any.

    def watch(self, wake: Callable[[Wakeup], None]) -> None:
        """From now until the store closes, call ``wake`` (in the event loop, without blocking)
        for each hint that another node changed something (see :class:`Wakeup`). The store keeps
        listening across lost connections; after one, it sends a Wakeup of kind "all"."""

    async def request_action(
        self, task_id: str, owner: str, attempt: int, action: str, at: float
    ) -> bool:
        """Ask ``owner``, the node running the task's attempt ``attempt``, to ``action`` it
        (cancel, pause, resume): the request is kept until the owner takes it, and the owner is
        woken (Wakeup "control"). A newer request for the task replaces an older one. False
        (nothing kept) when the task is not held by ``owner`` at ``attempt``."""

    async def take_requests(self, owner: str) -> list[ActionRequest]:
        """The requests for tasks ``owner`` runs, oldest first; each is handed out once."""

    async def last_change(self) -> int:
        """The position of the newest logged change (where a new reader starts)."""

    async def changes_since(
        self, after: int, limit: int, missing: Sequence[int] = ()
    ) -> list[TaskChange]:
        """Logged status changes (and submits) after position ``after``, and those at the
        positions ``missing`` (a change can commit after a later one: a reader that saw a
        hole asks for it again), oldest first, at most ``limit``. Changes made through this
        store object say so (``here``): its node announced them already. A store one node uses
        alone logs none."""

    async def prune_changes(self, before: float) -> int:
        """Forget logged changes and untaken requests older than ``before``; returns how many."""

    # -- nodes ----------------------------------------------------------------------------------
    # Every server attached to the store registers as a node under its name (SQLite and memory
    # stores have one at a time; PostgreSQL many). A node is alive while its heartbeat is recent.

    async def register_node(self, node: NodeRecord, alive_after: float) -> NodeRecord | None:
        """Record ``node`` as started, replacing an earlier record of its name; unless that name
        belongs to another owner that is alive (not stopped, heartbeat at or after
        ``alive_after``): then nothing is written and that node's record is returned."""

    async def node_heartbeat(self, name: str, owner: str, at: float) -> bool:
        """The node ``name`` run by ``owner`` is alive at ``at``; False (nothing written) when
        the name is no longer ``owner``'s or the node stopped."""

    async def stop_node(self, name: str, owner: str, at: float) -> bool:
        """The node ``name`` run by ``owner`` stopped gracefully at ``at``; False when the name
        is no longer ``owner``'s."""

    async def list_nodes(self) -> list[NodeRecord]:
        """Every node ever registered, by name, each with ``running``: how many tasks its
        owner holds now."""

    # -- reads ----------------------------------------------------------------------------------
    async def get(self, task_id: str) -> TaskRecord | None: ...

    async def children(self) -> list[ChildRecord]:
        """Every remembered child: after a crash, the ones that may still be running."""

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
        """One page of tasks in submission order, every filter given applying (None: no filter).

        ``id_prefix``: ids that start with it (lowercase hex). ``created_after`` /
        ``created_before``: created at or after / strictly before these times. ``error_contains``:
        the task's error holds this text, ASCII letters matched in any case.
        """

    async def logs(self, task_id: str, after: int = 0, limit: int = 1000) -> list[LogLine]: ...

    async def attempts(self, task_id: str) -> list[AttemptRecord]: ...

    async def worker_stats(self, worker: str) -> WorkerStats: ...

    async def finished_per_minute(
        self, worker: str, since_minute: int
    ) -> list[tuple[int, str, int]]:
        """(minute, outcome status, count) of attempts that ran and ended, from ``since_minute``
        on (a minute is ``int(finished_at // 60)``), oldest first."""

    async def queue_positions(self, worker: str, task_ids: Sequence[str]) -> dict[str, int]:
        """Where each of ``task_ids`` that is a Queued task of ``worker`` stands in the worker's
        queue: 1 is the next to be claimed. Queue order is claim order (see above; a task
        runnable only later, a retry in its backoff, stands where its ``run_after`` puts it).
        Ids that are not Queued tasks of ``worker`` are left out. One read of the queue up to
        the last of them, through the queue's index, however many ids are asked for."""

    async def oldest_queued_at(self, worker: str) -> float | None:
        """When the worker's longest-waiting Queued task (the first submitted) was queued; None
        when none is. An index lookup: metrics scrapes call it for every worker."""

    def commit_stats(self) -> CommitStats:
        """Commit latency and group size since the store opened (counted by the writer as it
        commits, so reading costs no I/O)."""

    # -- API tokens -----------------------------------------------------------------------------
    async def create_token(self, token: TokenRecord) -> bool:
        """Store a new token; False (nothing written) when its name is taken."""

    async def revoke_token(self, name: str) -> bool:
        """Delete a token; returns whether it existed. Takes effect for the very next request."""

    async def touch_token(self, name: str, when: float) -> None:
        """Record when a token was last used."""

    async def token_by_hash(self, token_hash: str) -> TokenRecord | None: ...

    # -- schedules ------------------------------------------------------------------------------
    async def create_schedule(self, schedule: ScheduleRecord) -> bool:
        """Store a new schedule; False (nothing written) when its name is taken."""

    async def save_schedule(self, schedule: ScheduleRecord) -> None:
        """Create or replace a schedule's definition (the config file's); an existing one keeps
        its last run and paused state, and its next run unless its timing changed."""

    async def get_schedule(self, name: str) -> ScheduleRecord | None: ...

    async def list_schedules(self) -> list[ScheduleRecord]:
        """Every schedule, by name."""

    async def delete_schedule(self, name: str) -> bool:
        """Delete a schedule; returns whether it existed."""

    async def set_schedule_paused(self, name: str, paused: bool, next_run: float) -> bool:
        """Pause or resume (a resumed schedule's next run is ``next_run``: no catch-up of the
        paused time); returns whether the schedule exists."""

    async def claim_schedule_run(
        self, name: str, due: float, next_run: float, run_id: str | None, at: float
    ) -> bool:
        """Claim due time ``due``: move ``next_run`` from ``due`` to ``next_run`` if it still
        equals ``due`` and the schedule is not paused, and in the same transaction record the run
        ``run_id`` started at ``at`` (None: the due time is skipped, no run). Exactly one of any
        number of concurrent claims of one due time wins; returns whether this one did."""

    async def record_schedule_run(
        self, name: str, run_id: str | None, at: float, error: str | None
    ) -> None:
        """Record a run started outside the timetable (run-now), or why the last run failed to
        start (``run_id`` None keeps the recorded run and sets only ``error``)."""

    async def list_tokens(self) -> list[TokenRecord]:
        """Every token, by name."""

    async def count_tokens(self) -> int: ...

    # -- audit log ------------------------------------------------------------------------------
    async def record_audit(self, entries: Sequence[AuditRecord]) -> None:
        """Append audit entries (one transaction for the lot)."""

    async def list_audit(
        self, *, limit: int = 100, cursor: int | None = None, descending: bool = False
    ) -> AuditPage: ...

    async def prune_audit(self, before: float, limit: int) -> int:
        """Delete at most ``limit`` of the oldest entries recorded before ``before``; returns
        how many went (small batches keep the writer free for submits)."""

    # -- idempotency keys -----------------------------------------------------------------------
    async def find_key(self, principal: str, key: str, now: float) -> IdempotencyRecord | None:
        """The principal's unexpired ``key`` (a read: retries answer without the writer)."""

    async def prune_keys(self, before: float, limit: int) -> int:
        """Delete at most ``limit`` keys that expired before ``before``; returns how many went."""

    # -- callbacks (tasky.callbacks) ------------------------------------------------------------
    async def add_callback(self, callback: CallbackRecord) -> None:
        """Remember a callback before its target exists, so no finish can happen without it."""

    async def drop_callback(self, kind: str, target_id: str) -> None:
        """Forget a callback whose target was never created (its submit was refused)."""

    async def arm_callback(self, kind: str, target_id: str, at: float) -> bool:
        """The target finished: make a waiting callback due at ``at``; False if none waits."""

    async def waiting_callbacks(self) -> list[tuple[str, str]]:
        """(kind, target id) of the callbacks whose target had not finished when last seen."""

    async def due_callbacks(self, now: float, limit: int) -> list[CallbackRecord]:
        """Pending callbacks due at ``now``, soonest first (attempts not loaded)."""

    async def claim_callbacks(self, now: float, limit: int, until: float) -> list[CallbackRecord]:
        """Take up to ``limit`` pending callbacks due at ``now``, soonest first (attempts not
        loaded), and in the same transaction make them due again only at ``until``: the taker's
        lease. Concurrent claims (other nodes) never take one callback twice; if the taker dies
        before recording its attempt, the callback is due again once the lease ends."""

    async def record_callback_attempt(
        self,
        kind: str,
        target_id: str,
        attempt: CallbackAttempt,
        state: str,
        next_at: float | None,
    ) -> None:
        """Append an attempt and set the callback's state ("pending" with the next attempt's
        time, "delivered" or "failed")."""

    async def get_callback(self, kind: str, target_id: str) -> CallbackRecord | None:
        """The callback of a task or chain with every attempt, oldest first."""

    # -- retention ------------------------------------------------------------------------------
    async def prune_finished(self, before: float, worker: str | None, limit: int) -> int:
        """Delete at most ``limit`` finished tasks (Completed, Failed, Canceled) that finished
        before ``before``, of ``worker`` (None: any), with their logs and attempts; returns how
        many went. Tasks of a chain are left to the chain's pruning. Statistics keep counting
        pruned tasks (status counts, tasks performed, run-time histograms)."""

    async def count_prunable(self, before: float, worker: str | None) -> int:
        """How many tasks :meth:`prune_finished` would delete without a limit."""


async def finish_each(store: Store, ends: Sequence[AttemptEnd], lazy: bool = False) -> list[bool]:
    """:meth:`Store.finish_many` for a store that writes each end on its own: every ``finish``
    at once (as the engine's ends of one moment were before they went together), then the
    first failure raised, if any."""
    answers = await asyncio.gather(
        *(store.finish(e.task_id, e.owner, e.attempt, e.outcome, lazy) for e in ends),
        return_exceptions=True,
    )
    for answer in answers:
        if isinstance(answer, BaseException):
            raise answer
    return [bool(answer) for answer in answers]
