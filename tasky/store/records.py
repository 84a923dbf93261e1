"""Plain records that cross the store boundary. JSON values only, never pickled objects."""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tasky.buckets import BucketSnapshot
from tasky.states import Status

JSON = Any
_Record = TypeVar("_Record")


def shallow_copier(cls: type[_Record]) -> Callable[[_Record], _Record]:
    """A function that copies an instance of the dataclass ``cls`` (shallow, as
    ``dataclasses.replace(obj)``): its ``__init__`` called with every field in order.
    ``dataclasses.replace`` looks up and checks every field on each call: 7.7 against 1.3 us
    for a TaskRecord on the benchmark machine, and a chain makes two such copies per step."""
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    if any(not f.init or f.kw_only for f in fields):
        raise TypeError(f"{cls.__name__}: every field must be a positional __init__ argument")
    values = operator.attrgetter(*(f.name for f in fields))

    def copy(obj: _Record) -> _Record:
        return cls(*values(obj))

    return copy


@dataclass(slots=True)
class TaskRecord:
    id: str
    worker: str
    status: Status
    config: JSON
    created_at: float
    seq: int = 0
    queued_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    attempt: int = 1
    retries: int = 0
    timeout: float | None = None
    progress: float | None = None
    progress_message: str | None = None
    result: JSON = None
    error: str | None = None
    owner: str | None = None
    lease_until: float | None = None
    run_after: float | None = None
    chain_id: str | None = None
    logs_dropped: int = 0
    # Where the task may run: None (any node), "node:NAME" or "label:LABEL" (see Claim.targets).
    target: str | None = None
    # The name of the node that started its latest attempt (None: it never started).
    node: str | None = None
    # Run time counts running time only: the current attempt's time spent Paused so far (ended
    # pauses), and when the pause it is in now began (None: not paused after it started).
    paused_seconds: float = 0.0
    paused_at: float | None = None

    def run_seconds(self, now: float) -> float | None:
        """How long the current (or last) attempt has run, pauses left out: up to its end, or
        up to ``now`` while it runs (up to its pause while Paused). None before it started."""
        if self.started_at is None:
            return None
        end = self.finished_at
        if end is None:
            end = self.paused_at if self.paused_at is not None else now
        return running_seconds(self.started_at, end, self.paused_seconds)


copy_task = shallow_copier(TaskRecord)


def running_seconds(started_at: float, ended_at: float, paused_seconds: float) -> float:
    """The running time of an attempt that started at ``started_at``, ran until ``ended_at`` (or
    paused then, for good) and spent ``paused_seconds`` of that Paused; never negative."""
    return max(ended_at - started_at - paused_seconds, 0.0)


def pause_ends(paused_at: float | None, paused_seconds: float, at: float) -> float:
    """An attempt's paused time once a pause that began at ``paused_at`` (None: none) ends at
    ``at``: resumed, or the attempt ended while Paused (its run time counts up to the pause)."""
    if paused_at is None:
        return paused_seconds
    return paused_seconds + max(at - paused_at, 0.0)


@dataclass(frozen=True, slots=True)
class Claim:
    """Who takes tasks, until when, and how many may hold a slot of the worker at once (over
    every owner). ``count``: at most this many tasks in one claim (None: as many as fit).
    A submit that claims starts its task at the task's ``queued_at``."""

    owner: str
    lease_until: float
    limit: int
    count: int | None = None
    # The claiming node's name (recorded on the tasks it starts), and the targets it serves
    # besides untargeted tasks: "node:NAME" and "label:LABEL" for each of its labels. A claim
    # never starts a task whose target is not among them.
    node: str | None = None
    targets: tuple[str, ...] = ()

    def accepts(self, target: str | None) -> bool:
        return target is None or target in self.targets


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a held attempt ended. ``status``: Completed, Failed or Canceled. ``result``: the
    task's Output (an object; kept only when Completed). ``progress``/``progress_message``:
    the newest progress not yet written (None: keep what the store has)."""

    status: Status
    at: float
    result: JSON = None
    error: str | None = None
    progress: float | None = None
    progress_message: str | None = None
    traceback: str | None = None


@dataclass(frozen=True, slots=True)
class AttemptEnd:
    """One held attempt's end, for :meth:`Store.finish_many` (the arguments of ``finish``)."""

    task_id: str
    owner: str
    attempt: int
    outcome: Outcome


@dataclass(slots=True)
class AttemptRecord:
    attempt: int
    status: Status
    started_at: float | None
    finished_at: float | None
    error: str | None
    result: JSON = None
    # Where a Python worker's failure came from (already capped; no frame locals).
    traceback: str | None = None
    # The node that ran it (None: it never started, or it ran before nodes were recorded).
    node: str | None = None
    # Time the attempt spent Paused between its start and its end (not running time).
    paused_seconds: float = 0.0

    @property
    def run_seconds(self) -> float | None:
        """Running time, pauses left out; None when the attempt never started or ended."""
        if self.started_at is None or self.finished_at is None:
            return None
        return running_seconds(self.started_at, self.finished_at, self.paused_seconds)


@dataclass(slots=True)
class LogLine:
    seq: int
    ts: float
    line: str


@dataclass(slots=True)
class TaskPage:
    tasks: list[TaskRecord]
    next_cursor: int | None


@dataclass(slots=True)
class WorkerStats:
    worker: str
    by_status: dict[str, int] = field(default_factory=dict)
    finished: int = 0
    run_time_sum: float = 0.0
    wait_sum: float = 0.0
    wait_count: int = 0
    # Run-time histogram: bucket index -> count (see tasky.store.histogram).
    run_time_hist: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ChildRecord:
    """A running task's child process group, kept so a restart can end what a crash left."""

    task_id: str
    pgid: int
    # When the group's leader started (clock ticks since boot) and in which boot: a pid reused
    # by an unrelated program differs in one of them.
    start_ticks: int
    boot_id: str
    # The value of the environment mark that every process of the task inherits.
    mark: str
    # The node (``Settings.node``) that started it: a node's start-up ends and forgets its
    # own children only, not those of another node on the same host. None: recorded before
    # nodes were told apart (taken as this node's).
    node: str | None = None


@dataclass(slots=True)
class TokenRecord:
    """An API token as stored: its hash only, never the token itself."""

    name: str
    token_hash: str
    role: str
    # Lower-case worker names an operator is limited to; None means every worker.
    workers: list[str] | None
    created_at: float
    expires_at: float | None = None
    last_used_at: float | None = None


@dataclass(slots=True)
class ScheduleRecord:
    """A schedule: what to start (a worker + config, or a named chain + parameters) and when.

    Exactly one of ``cron`` and ``interval`` is set. ``next_run`` is the due time the next claim
    must name (the compare-and-set that keeps a due time from firing twice).
    """

    name: str
    worker: str | None
    chain: str | None
    config: JSON
    cron: str | None
    interval: float | None
    timezone: str
    catch_up: str  # "skip" or "once": what a due time missed while the server was down does
    next_run: float
    created_at: float
    paused: bool = False
    source: str = "api"  # "api", or the config file that declares it
    last_run_at: float | None = None
    last_run_id: str | None = None  # the TaskId (worker) or ChainId (chain) of the last run
    last_error: str | None = None


@dataclass(slots=True)
class AuditRecord:
    """One state-changing API call: who, from where, what, on what, and the answer's status."""

    at: float
    token: str
    client: str
    method: str
    route: str
    target: str
    status: int
    seq: int = 0


@dataclass(slots=True)
class AuditPage:
    entries: list[AuditRecord]
    next_cursor: int | None


@dataclass(frozen=True, slots=True)
class CommitStats:
    """What the store's writer measured since it opened: how long each commit (one transaction,
    fsync included) took in seconds, and how many writes it carried (group commit)."""

    seconds: BucketSnapshot
    group_size: BucketSnapshot


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """An ``Idempotency-Key`` a caller (``principal``) sent, and what it created.

    ``fingerprint`` identifies the request (target, body, relevant query parameters): the same
    key with another fingerprint is a client mistake, not a retry. ``target_id`` is the task or
    chain the first request created. The key counts until ``expires_at``; ``created_at`` is when
    this request arrived (a stored key that expired by then is replaced).
    """

    principal: str
    key: str
    fingerprint: str
    target_id: str
    created_at: float
    expires_at: float


def batch_target(task_ids: Sequence[str]) -> str:
    """The ``target_id`` of a key that created a batch: its task ids in order, space-separated
    (ids never hold a space)."""
    return " ".join(task_ids)


def batch_ids(target_id: str) -> list[str]:
    """The task ids a batch's key record holds (see :func:`batch_target`)."""
    return target_id.split(" ") if target_id else []


@dataclass(slots=True)
class CallbackAttempt:
    """One delivery attempt of a callback: when, and the answer's status code or the error."""

    at: float
    status_code: int | None = None
    error: str | None = None


@dataclass(slots=True)
class CallbackRecord:
    """A URL to POST a task's or chain's final record to once it has finished.

    ``kind`` is "task" or "chain". ``next_at`` is None while the target has not finished (the
    callback waits), then the time of the next attempt; ``state`` ends as "delivered" or "failed".
    """

    kind: str
    target_id: str
    url: str
    created_at: float
    state: str = "pending"
    next_at: float | None = None
    attempts: list[CallbackAttempt] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Wakeup:
    """A hint from the store that something changed elsewhere (another node wrote it): never
    the only way to learn it, since a hint can be lost (see :meth:`Store.watch`).

    ``kind`` "changes": task changes were logged (:meth:`Store.changes_since`: new tasks,
    status changes, tasks that may now be runnable); "control": a task owned by ``subject`` has
    an action requested (:meth:`Store.request_action`); "all": hints may have been lost (the
    store reconnected), so look at everything.
    """

    kind: str
    subject: str = ""


@dataclass(frozen=True, slots=True)
class ActionRequest:
    """An action (cancel, pause, resume) asked of the node that runs a task, by another node."""

    task_id: str
    attempt: int
    action: str
    at: float


@dataclass(frozen=True, slots=True)
class TaskChange:
    """A task's status change (or its creation) as logged by a store that nodes share."""

    seq: int
    task_id: str
    worker: str
    status: Status
    chain_id: str | None
    owner: str | None
    # The change created the task (a submit), rather than moving it.
    created: bool
    at: float
    # A task of the worker may now be runnable: it was queued (submit, resume, re-run, retry,
    # re-queue), or a slot of the worker came free while tasks of it wait.
    wakes: bool = False
    # Made through the store object that lists it: its own node announced it already.
    here: bool = False
    # The name of the node that started the task's latest attempt (None: not started yet).
    node: str | None = None


@dataclass(slots=True)
class NodeRecord:
    """A server attached to the store. ``owner`` is the claim owner of its process (unique per
    process start), ``heartbeat_at`` when it last said it was alive, ``stopped_at`` when it
    stopped gracefully (None while it runs, or after a crash). ``running``: the tasks its owner
    holds, counted when nodes are listed."""

    name: str
    labels: list[str]
    owner: str
    workers: list[str]
    started_at: float
    heartbeat_at: float
    stopped_at: float | None = None
    running: int = 0
    # The machine and process id that run it (a restart on the same machine can tell whether
    # the process that held the name is gone).
    host: str = ""
    pid: int = 0
