"""The Store contract. The engine talks to storage only through this protocol.

Every write that changes a task's status is a compare-and-set on the status it expects (and, for
work a node owns, on owner + attempt), so a node that lost its lease cannot overwrite a task that
someone else now owns. An acknowledged write is durable.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from tasky.states import Status
from tasky.store.records import (
    AttemptRecord,
    AuditPage,
    AuditRecord,
    ChildRecord,
    LogLine,
    TaskPage,
    TaskRecord,
    TokenRecord,
    WorkerStats,
)

# Columns a transition may set besides status. Kept explicit so no caller can write arbitrary SQL.
SETTABLE = frozenset(
    {
        "queued_at",
        "started_at",
        "finished_at",
        "attempt",
        "progress",
        "progress_message",
        "result",
        "error",
        "owner",
        "lease_until",
        "run_after",
        "config",
        "retries",
        "timeout",
    }
)


class StoreLocked(Exception):
    """Another Tasky server already uses this store."""


class Store(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    # -- writes ---------------------------------------------------------------------------------
    async def insert(self, task: TaskRecord) -> None:
        """Insert one task; returns once committed (concurrent inserts share one commit)."""

    def insert_many_now(self, tasks: Iterable[TaskRecord]) -> None:
        """Bulk insert outside the group-commit path (seeding, imports)."""

    async def transition(
        self,
        task_id: str,
        expected: Sequence[Status],
        new: Status,
        *,
        owner: str | None = None,
        attempt: int | None = None,
        fields: dict[str, Any] | None = None,
        record_as: Status | None = None,
    ) -> bool:
        """Set ``status = new`` (and ``fields``) if the status is one of ``expected``.

        ``owner`` / ``attempt``, when given, must match too (compare-and-set). Returns whether the
        row changed. A finishing move (or any move given ``record_as``, such as a retry) closes the
        current attempt: it is added to the history and to the worker's timing statistics.
        """

    async def heartbeat(self, owner: str, task_ids: Sequence[str], lease_until: float) -> int: ...

    async def set_progress(self, updates: Sequence[tuple[str, float | None, str | None]]) -> None:
        """Record the latest (task id, fraction, message) of running tasks."""

    async def append_logs(self, lines: Sequence[tuple[str, float, str]], max_lines: int) -> None:
        """Append (task id, time, line) rows, keeping at most ``max_lines`` per task."""

    async def record_child(self, child: ChildRecord) -> None:
        """Remember a running task's child process group (one per task; a new one replaces it)."""

    async def forget_children(self, task_ids: Sequence[str]) -> None:
        """The children of these tasks are gone: stop remembering them."""

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
    ) -> TaskPage: ...

    async def logs(self, task_id: str, after: int = 0, limit: int = 1000) -> list[LogLine]: ...

    async def attempts(self, task_id: str) -> list[AttemptRecord]: ...

    async def worker_stats(self, worker: str) -> WorkerStats: ...

    async def finished_per_minute(
        self, worker: str, since_minute: int
    ) -> list[tuple[int, str, int]]:
        """(minute, outcome status, count) of attempts that ran and ended, from ``since_minute``
        on (a minute is ``int(finished_at // 60)``), oldest first."""

    async def ids_with_status(
        self, statuses: Sequence[Status]
    ) -> list[tuple[str, str, Status, float | None]]:
        """(id, worker, status, run_after) of every task in ``statuses``, oldest first."""

    # -- API tokens -----------------------------------------------------------------------------
    async def create_token(self, token: TokenRecord) -> bool:
        """Store a new token; False (nothing written) when its name is taken."""

    async def revoke_token(self, name: str) -> bool:
        """Delete a token; returns whether it existed. Takes effect for the very next request."""

    async def touch_token(self, name: str, when: float) -> None:
        """Record when a token was last used."""

    async def token_by_hash(self, token_hash: str) -> TokenRecord | None: ...

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

    # -- retention ------------------------------------------------------------------------------
    async def prune_finished(self, before: float, worker: str | None, limit: int) -> int:
        """Delete at most ``limit`` finished tasks (Completed, Failed, Canceled) that finished
        before ``before``, of ``worker`` (None: any), with their logs and attempts; returns how
        many went. Tasks of a chain are left to the chain's pruning. Statistics keep counting
        pruned tasks (status counts, tasks performed, run-time histograms)."""

    async def count_prunable(self, before: float, worker: str | None) -> int:
        """How many tasks :meth:`prune_finished` would delete without a limit."""
