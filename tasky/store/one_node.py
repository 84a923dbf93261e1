"""The node-to-node operations of a store that only one node uses (memory, SQLite).

One node holds such a store (SQLite keeps a lock file; a memory store lives in one process), so
there is nobody else to hear from: no wake-ups, and no changes made elsewhere. Action requests are
kept in memory: they are only ever for tasks this very node owns, and end with it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from tasky.store.records import ActionRequest, TaskChange, TaskRecord, Wakeup


class OneNodeMixin:
    """Store methods (see tasky.store.base.Store) for stores that one node uses alone."""

    _requests: dict[str, tuple[str, ActionRequest]]
    # The store's own read (the mixin comes last among the store's bases).
    get: Callable[[str], Awaitable[TaskRecord | None]]

    def watch(self, wake: Callable[[Wakeup], None]) -> None:
        """Nothing else writes here: no hint will ever come."""

    async def request_action(
        self, task_id: str, owner: str, attempt: int, action: str, at: float
    ) -> bool:
        record = await self.get(task_id)
        if record is None or record.owner != owner or record.attempt != attempt:
            return False
        if not hasattr(self, "_requests"):
            self._requests = {}
        self._requests[task_id] = (owner, ActionRequest(task_id, attempt, action, at))
        return True

    async def take_requests(self, owner: str) -> list[ActionRequest]:
        requests = getattr(self, "_requests", {})
        taken = [r for o, r in requests.values() if o == owner]
        for request in taken:
            del requests[request.task_id]
        return sorted(taken, key=lambda r: r.at)

    async def last_change(self) -> int:
        return 0

    async def changes_since(
        self, after: int, limit: int, missing: Sequence[int] = ()
    ) -> list[TaskChange]:
        return []

    async def prune_changes(self, before: float) -> int:
        requests = getattr(self, "_requests", {})
        old = [task_id for task_id, (_, r) in requests.items() if r.at < before]
        for task_id in old:
            del requests[task_id]
        return len(old)
