"""A lane's slots: slots that come free together (the ends of one group commit, delivered in
one go) make one claim for all of them, not a claim of one task at the first."""

from __future__ import annotations

import asyncio

from tasky.engine.lanes import Lane
from tasky.workers.base import EmptyConfig, Worker
from tasky.workers.context import AsyncTaskContext


class Four(Worker):
    name = "Four"
    description = "Four at a time."
    max_tasks = 4

    async def perform(self, config: EmptyConfig, task: AsyncTaskContext) -> None:
        return None


async def test_slots_freed_in_one_go_make_one_dispatch_that_sees_them_all() -> None:
    seen: list[int] = []
    lane = Lane(Four(), lambda lane, ending: seen.append(lane.slots.free))
    for _ in range(4):
        lane.slots.start(reserved=False)
    loop = asyncio.get_running_loop()
    # Three ends delivered together: each wakes its own waiter, one callback after another.
    for _ in range(3):
        loop.call_soon(lane.slots.release)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert seen == [3]
    lane.slots.release()  # a later one dispatches again
    await asyncio.sleep(0)
    assert seen == [3, 4]


async def test_an_unused_reservation_given_back_dispatches_too() -> None:
    seen: list[int] = []
    lane = Lane(Four(), lambda lane, ending: seen.append(lane.slots.free))
    assert lane.slots.reserve(2) == 2
    lane.slots.unreserve(2)
    assert seen == []  # not at once: after the callbacks ready now
    await asyncio.sleep(0)
    assert seen == [4]
