"""Finding a worker or a task by what a caller typed, or NotFound naming what exists."""

from __future__ import annotations

from tasky.echo import shown
from tasky.engine.errors import NotFound
from tasky.ids import is_valid_id
from tasky.store.base import Store
from tasky.store.records import TaskRecord
from tasky.workers.base import Worker
from tasky.workers.registry import WorkerRegistry


def find_worker(registry: WorkerRegistry, name: str) -> Worker:
    found = registry.get(name)
    if found is None:
        known = ", ".join(registry.names())
        raise NotFound(f"no worker named {shown(name)}; workers: {known}")
    return found


async def find_task(store: Store, task_id: str) -> TaskRecord:
    record = await store.get(task_id) if is_valid_id(task_id) else None
    if record is None:
        raise NotFound(f"no task with id {shown(task_id)}")
    return record
