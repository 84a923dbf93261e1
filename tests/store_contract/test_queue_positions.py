"""Where a Queued task stands in its worker's queue: claim order, 1 = the next to be claimed."""

from __future__ import annotations

from tasky.store import Store
from tests.store_contract.records import OWNER, claim, outcome, running, task


async def _claim_order(store: Store, worker: str = "W") -> list[str]:
    """Every task the worker's queue holds, claimed one at a time far in the future."""
    order = []
    while claimed := await store.claim(worker, claim(count=1, limit=1000), 8000.0):
        order.extend(t.id for t in claimed)
    return order


async def test_positions_follow_submit_order(store: Store) -> None:
    ids = [(await store.submit(task(queued_at=1000.0 + i))).id for i in range(5)]
    assert await store.queue_positions("W", ids) == {i: n for n, i in enumerate(ids, start=1)}
    # Any subset, in any order, gets the same numbers.
    assert await store.queue_positions("W", [ids[4], ids[1]]) == {ids[4]: 5, ids[1]: 2}
    assert await store.queue_positions("W", []) == {}


async def test_positions_are_claim_order(store: Store) -> None:
    first = await store.submit(task(queued_at=1000.0))
    later = await store.submit(task(queued_at=1001.0, run_after=1500.0))  # runnable only later
    held = await store.submit(task(queued_at=1002.0))
    last = await store.submit(task(queued_at=1003.0))
    # Held back and resumed: it rejoins at the end.
    assert await store.pause(held.id, None, 1004.0)
    assert await store.resume(held.id, None, 1005.0)
    ids = [first.id, later.id, held.id, last.id]
    positions = await store.queue_positions("W", ids)
    assert positions == {first.id: 1, last.id: 2, held.id: 3, later.id: 4}
    assert await _claim_order(store) == sorted(ids, key=positions.__getitem__)


async def test_a_requeued_task_goes_to_the_end_and_a_retry_waits_for_its_backoff(
    store: Store,
) -> None:
    retried = await running(store, started_at=1001.0)
    crashed = await running(store, started_at=1002.0)
    waiting = [(await store.submit(task(queued_at=1010.0 + i))).id for i in range(2)]
    assert await store.retry_later(retried.id, OWNER, 1, "boom", 1100.0, 1020.0)
    assert await store.requeue_interrupted(crashed.id, OWNER, 1, "node stopped", 1030.0)
    ids = [*waiting, crashed.id, retried.id]
    assert await store.queue_positions("W", ids) == {i: n for n, i in enumerate(ids, start=1)}
    assert await _claim_order(store) == ids


async def test_only_queued_tasks_of_the_worker_count_and_get_a_position(store: Store) -> None:
    started = await running(store, started_at=1001.0)
    done = await running(store, started_at=1002.0)
    assert await store.finish(done.id, OWNER, 1, outcome(at=1003.0))
    other = await store.submit(task(worker="X", queued_at=1004.0))
    held = await store.submit(task(queued_at=1005.0))
    assert await store.pause(held.id, None, 1006.0)
    queued = await store.submit(task(queued_at=1007.0))
    canceled = await store.submit(task(queued_at=1008.0))
    assert await store.cancel(canceled.id, 1009.0)
    ids = [started.id, done.id, other.id, held.id, queued.id, canceled.id, "f" * 32]
    assert await store.queue_positions("W", ids) == {queued.id: 1}
    assert await store.queue_positions("X", ids) == {other.id: 1}


async def test_positions_move_up_as_the_queue_moves(store: Store) -> None:
    ids = [(await store.submit(task(queued_at=1000.0 + i))).id for i in range(3)]
    assert await store.cancel(ids[0], 1010.0)
    assert await store.queue_positions("W", ids) == {ids[1]: 1, ids[2]: 2}
    [claimed] = await store.claim("W", claim(count=1), 1011.0)
    assert claimed.id == ids[1]
    assert await store.queue_positions("W", ids) == {ids[2]: 1}
