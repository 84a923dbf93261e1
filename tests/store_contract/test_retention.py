"""Pruning finished tasks: what goes, what stays, and statistics that keep counting."""

from __future__ import annotations

from tasky.states import Status
from tasky.store import Store
from tasky.store.records import ChildRecord
from tests.store_contract.records import finished, running, stored, task


async def test_prune_finished_keeps_unfinished_recent_chained_and_statistics(
    store: Store,
) -> None:
    old = [
        await finished(store, status, 2000.0, worker="P")
        for status in (Status.COMPLETED, Status.FAILED, Status.CANCELED)
    ]
    await store.append_logs([(old[0].id, 2000.0, "a line"), (old[1].id, 2000.0, "b")], 100)
    recent = await finished(store, at=9000.0, worker="P")
    chained = await finished(store, at=2000.0, worker="P", chain_id="c1")
    other = await finished(store, at=2000.0, worker="Q")
    # Unfinished tasks are kept whatever their age.
    going = await running(store, worker="P", queued_at=1.0, started_at=2.0)
    queued = await store.submit(task(worker="P", queued_at=1.0))
    before_stats = await store.worker_stats("P")

    assert await store.count_prunable(5000.0, "P") == 3
    assert await store.count_prunable(5000.0, None) == 4  # and Q's
    assert await store.count_prunable(1999.0, None) == 0  # strictly before
    assert await store.prune_finished(5000.0, "P", 2) == 2  # the limit is kept
    assert await store.prune_finished(5000.0, "P", 2) == 1
    assert await store.prune_finished(5000.0, "P", 2) == 0
    for t in old:
        assert await store.get(t.id) is None
        assert await store.logs(t.id) == [] and await store.attempts(t.id) == []
    for t in (recent, chained, other, going, queued):
        assert await store.get(t.id) is not None
    assert len(await store.attempts(recent.id)) == 1
    # What was pruned still counts: status counts, tasks performed, run times.
    after_stats = await store.worker_stats("P")
    assert after_stats.by_status == before_stats.by_status
    assert after_stats.by_status["Completed"] == 3 and after_stats.by_status["Failed"] == 1
    assert (after_stats.finished, after_stats.run_time_hist) == (
        before_stats.finished,
        before_stats.run_time_hist,
    )
    assert after_stats.finished == 5  # three pruned, the recent one, the chained one
    assert await store.prune_finished(5000.0, None, 100) == 1  # Q's; the chained one stays
    assert await store.get(other.id) is None and await store.get(chained.id) is not None
    assert await store.count_prunable(5000.0, None) == 0


async def test_pruning_forgets_the_children_of_pruned_tasks(store: Store) -> None:
    gone = await finished(store, at=2000.0)
    kept = await running(store, queued_at=3000.0, started_at=3001.0)
    for t in (gone, kept):
        await store.record_child(ChildRecord(t.id, 100, 1, "boot", "mark"))
    assert await store.prune_finished(5000.0, None, 10) == 1
    assert [c.task_id for c in await store.children()] == [kept.id]
    assert (await stored(store, kept.id)).status is Status.RUNNING
