"""Run time counts running time only: a pause of a started attempt is left out of its run time, in
the task, in the attempt's record and in the worker's statistics."""

from __future__ import annotations

import pytest

from tasky.states import Status
from tasky.store import Store
from tasky.store.histogram import bucket_of
from tasky.store.records import Claim
from tests.store_contract.records import LEASE, OWNER, claim, outcome, running, stored, task


async def test_a_pause_is_left_out_of_the_run_time(store: Store) -> None:
    started = await running(store, started_at=1000.0)
    assert await store.pause(started.id, OWNER, 1000.5)
    paused = await stored(store, started.id)
    assert (paused.paused_at, paused.paused_seconds) == (1000.5, 0.0)
    # While Paused the run time stands still, whatever the clock says.
    assert paused.run_seconds(1003.0) == paused.run_seconds(1100.0) == 0.5
    assert await store.resume(started.id, OWNER, 1005.5)
    resumed = await stored(store, started.id)
    assert (resumed.paused_at, resumed.paused_seconds) == (None, 5.0)
    assert resumed.run_seconds(1006.0) == 1.0
    assert await store.finish(started.id, OWNER, 1, outcome(at=1007.0))
    done = await stored(store, started.id)
    assert (done.paused_at, done.paused_seconds) == (None, 5.0)
    assert done.run_seconds(5000.0) == 2.0
    [attempt] = await store.attempts(started.id)
    assert (attempt.paused_seconds, attempt.run_seconds) == (5.0, 2.0)
    stats = await store.worker_stats("W")
    assert (stats.finished, stats.run_time_sum) == (1, 2.0)
    assert stats.run_time_hist == {bucket_of(2.0): 1}


async def test_two_pauses_add_up(store: Store) -> None:
    started = await running(store, started_at=1000.0)
    for pause_at, resume_at in ((1001.0, 1003.0), (1004.0, 1010.0)):
        assert await store.pause(started.id, OWNER, pause_at)
        assert await store.resume(started.id, OWNER, resume_at)
    assert await store.finish(started.id, OWNER, 1, outcome(at=1012.0))
    [attempt] = await store.attempts(started.id)
    assert (attempt.paused_seconds, attempt.run_seconds) == (8.0, 4.0)
    assert (await store.worker_stats("W")).run_time_sum == 4.0


@pytest.mark.parametrize("status", [Status.CANCELED, Status.FAILED, Status.COMPLETED])
async def test_an_attempt_that_ends_while_paused_ran_until_its_pause(
    store: Store, status: Status
) -> None:
    started = await running(store, started_at=1000.0)
    assert await store.pause(started.id, OWNER, 1003.0)
    assert await store.finish(started.id, OWNER, 1, outcome(status, at=1050.0))
    done = await stored(store, started.id)
    assert (done.status, done.paused_at, done.paused_seconds) == (status, None, 47.0)
    assert done.run_seconds(9000.0) == 3.0
    [attempt] = await store.attempts(started.id)
    assert attempt.run_seconds == 3.0
    assert (await store.worker_stats("W")).run_time_sum == 3.0


async def test_an_interrupted_paused_attempt_ran_until_its_pause(store: Store) -> None:
    started = await running(store, started_at=1000.0)
    assert await store.pause(started.id, OWNER, 1002.0)
    assert await store.requeue_interrupted(started.id, OWNER, 1, "node stopped", 1020.0)
    requeued = await stored(store, started.id)
    # The next attempt starts with no pause of its own.
    assert (requeued.attempt, requeued.paused_seconds, requeued.paused_at) == (2, 0.0, None)
    [first] = await store.attempts(started.id)
    assert first.run_seconds == 2.0
    [second] = await store.claim("W", claim(), 1030.0)
    assert await store.finish(second.id, OWNER, 2, outcome(at=1031.0))
    attempts = await store.attempts(started.id)
    assert [a.run_seconds for a in attempts] == [2.0, 1.0]
    assert (await store.worker_stats("W")).run_time_sum == 3.0


async def test_a_rerun_starts_without_the_previous_attempts_pauses(store: Store) -> None:
    started = await running(store, started_at=1000.0)
    assert await store.pause(started.id, OWNER, 1001.0)
    assert await store.resume(started.id, OWNER, 1011.0)
    assert await store.finish(started.id, OWNER, 1, outcome(at=1012.0))
    assert await store.rerun(started.id, 1020.0)
    again = await stored(store, started.id)
    assert (again.paused_seconds, again.paused_at) == (0.0, None)
    [claimed] = await store.claim("W", claim(), 1021.0)
    assert claimed.run_seconds(1024.0) == 3.0


async def test_holding_back_a_queued_task_is_no_pause_of_an_attempt(store: Store) -> None:
    queued = await store.submit(task(queued_at=1000.0))
    assert await store.pause(queued.id, None, 1001.0)
    held = await stored(store, queued.id)
    assert (held.paused_at, held.paused_seconds, held.run_seconds(1005.0)) == (None, 0.0, None)
    assert await store.resume(queued.id, None, 1010.0)
    [claimed] = await store.claim("W", claim(), 1011.0)
    assert await store.finish(claimed.id, OWNER, 1, outcome(at=1014.0))
    [attempt] = await store.attempts(queued.id)
    assert (attempt.paused_seconds, attempt.run_seconds) == (0.0, 3.0)


async def test_canceling_a_held_back_task_records_no_run_time(store: Store) -> None:
    queued = await store.submit(task(queued_at=1000.0))
    assert await store.pause(queued.id, None, 1001.0)
    assert await store.cancel(queued.id, 1005.0)
    [attempt] = await store.attempts(queued.id)
    assert (attempt.status, attempt.run_seconds) == (Status.CANCELED, None)
    assert (await store.worker_stats("W")).finished == 0


@pytest.mark.parametrize(
    "end", ["finish", "retry_later", "requeue_interrupted", "fail_interrupted"]
)
async def test_an_attempt_keeps_both_its_node_and_its_paused_time(store: Store, end: str) -> None:
    """Every column of an ended attempt together (each store lists them by hand): the node that
    ran it and its time spent Paused, from a targeted task."""
    queued = await store.submit(task(queued_at=1000.0, target="node:web-1"))
    web = Claim(OWNER, LEASE, 10, node="web-1", targets=("node:web-1",))
    [started] = await store.claim("W", web, 1000.0)
    assert (started.node, started.target, started.paused_seconds) == ("web-1", "node:web-1", 0.0)
    assert await store.pause(queued.id, OWNER, 1001.0)
    assert await store.resume(queued.id, OWNER, 1004.0)
    if end == "finish":
        assert await store.finish(queued.id, OWNER, 1, outcome(at=1006.0))
    elif end == "retry_later":
        assert await store.retry_later(queued.id, OWNER, 1, "boom", 1010.0, 1006.0)
    elif end == "requeue_interrupted":
        assert await store.requeue_interrupted(queued.id, OWNER, 1, "node stopped", 1006.0)
    else:
        assert await store.fail_interrupted(queued.id, OWNER, 1, "node stopped", 1006.0)
    [attempt] = await store.attempts(queued.id)
    assert (attempt.node, attempt.paused_seconds, attempt.run_seconds) == ("web-1", 3.0, 3.0)
    after = await stored(store, queued.id)
    assert (after.node, after.target) == ("web-1", "node:web-1")
