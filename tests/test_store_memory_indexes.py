"""The in-memory store keeps per-worker indexes (the tasks holding a slot, the queue in
(ready_at, seq) order), so submitting, claiming and finishing never walk every task kept: a
chain of 10,000 steps on it costs the same per step as a short one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tasky.states import Status
from tasky.store import create_store
from tasky.store.memory import MemoryStore
from tasky.store.records import TaskRecord
from tests.store_contract.records import OWNER, WORKER, claim, outcome, task


class NoWalk(dict[str, TaskRecord]):
    """The store's tasks, refusing to be walked: only lookups by id are allowed."""

    walking = False

    def _refuse(self) -> None:
        if self.walking:
            raise AssertionError("the store walked every task")

    def values(self) -> Any:
        self._refuse()
        return super().values()

    def items(self) -> Any:
        self._refuse()
        return super().items()

    def __iter__(self) -> Iterator[str]:
        self._refuse()
        return super().__iter__()


async def memory_store() -> tuple[MemoryStore, NoWalk]:
    store = create_store("memory:")
    assert isinstance(store, MemoryStore)
    await store.open()
    tasks = NoWalk()
    store._data.tasks = tasks
    return store, tasks


async def test_submit_claim_finish_and_the_next_start_read_no_other_task() -> None:
    store, tasks = await memory_store()
    # Many tasks of every kind kept: finished, running, queued, of this worker and others.
    for n in range(50):
        await store.submit(task(queued_at=1000.0 + n))
        await store.submit(task("Other", queued_at=1000.0 + n))
    started = await store.claim(WORKER, claim(limit=30), 1100.0)
    for done in started[:20]:
        assert await store.finish(done.id, OWNER, 1, outcome())
    tasks.walking = True

    # 10 hold a slot of the limit 12: two more start, in queue order.
    assert [t.queued_at for t in await store.claim(WORKER, claim(limit=12), 1101.0)] == [
        1030.0,
        1031.0,
    ]
    assert await store.claim(WORKER, claim(limit=12), 1101.0) == []
    # A submit that claims waits behind the queue; with none ahead and a free slot, it starts.
    behind = await store.submit(task(queued_at=1102.0), claim(limit=100))
    assert behind.status is Status.QUEUED
    alone = await store.submit(task("Alone", queued_at=1102.0), claim(limit=1))
    assert alone.status is Status.RUNNING
    waiting = await store.submit(task("Alone", queued_at=1103.0), claim(limit=1))
    assert waiting.status is Status.QUEUED  # no free slot
    assert await store.next_runnable_at(WORKER) == 1032.0
    assert await store.next_runnable_at("Nobody") is None
    assert await store.finish(alone.id, OWNER, 1, outcome(at=1104.0))
    [after] = await store.claim("Alone", claim(limit=1), 1105.0)
    assert after.id == waiting.id
    # Paused and resumed, a queued task goes to the back of the queue.
    assert await store.pause(behind.id, None, 1106.0)
    assert await store.next_runnable_at(WORKER) == 1032.0
    first = (await store.claim(WORKER, claim(limit=100, count=1), 1107.0))[0]
    assert first.queued_at == 1032.0
    assert await store.resume(behind.id, None, 1108.0)
    assert (await store.get(behind.id)) is not None
    rest = await store.claim(WORKER, claim(limit=100), 1109.0)
    assert [t.queued_at for t in rest][-1] == 1108.0 and rest[-1].id == behind.id
    assert len(rest) == 18  # 1033.0 ... 1049.0, then the resumed one
