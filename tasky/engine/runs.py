"""The attempts running here: their control handles, and the one place where an attempt ends
(its handle let go, its slot released)."""

from __future__ import annotations

from collections.abc import Callable

from tasky.engine.handle import RunHandle
from tasky.engine.lanes import Lane


class Runs:
    def __init__(self) -> None:
        self._handles: dict[str, RunHandle] = {}
        # Called with the task id once an attempt has ended here (buffers drop what is left).
        self.on_end: list[Callable[[str], None]] = []

    def add(self, handle: RunHandle) -> None:
        self._handles[handle.record.id] = handle

    def get(self, task_id: str) -> RunHandle | None:
        return self._handles.get(task_id)

    def ids(self) -> list[str]:
        return list(self._handles)

    def handles(self) -> list[RunHandle]:
        return list(self._handles.values())

    def paused(self) -> int:
        return sum(1 for handle in self._handles.values() if handle.ctx.paused)

    def end(self, lane: Lane, task_id: str) -> None:
        """The attempt's end is recorded (or left to recovery): free its slot."""
        handle = self._handles.pop(task_id, None)
        if handle is not None:
            handle.settle()
        for forget in self.on_end:
            forget(task_id)
        lane.slots.release()
