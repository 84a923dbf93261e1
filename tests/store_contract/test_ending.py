"""How an attempt ends: finish, retry_later, requeue_interrupted, fail_interrupted.

Each is a compare-and-set on (task, owner, attempt), records the attempt exactly once, and
counts it in the worker's statistics in the same write.
"""

from __future__ import annotations

import dataclasses

import pytest

from tasky.states import MOVES, Status
from tasky.store import Store
from tasky.store.records import AttemptEnd
from tests.store_contract.records import (
    OTHER,
    OWNER,
    claim,
    nonzero,
    outcome,
    running,
    stored,
    task,
)


async def test_finish_completes_with_result_progress_and_one_attempt(store: Store) -> None:
    started = await running(store, queued_at=1000.0, started_at=1002.0)
    done = outcome(Status.COMPLETED, 1005.0, result={"r": [1]}, progress_message="all done")
    assert await store.finish(started.id, OWNER, 1, done)
    got = await stored(store, started.id)
    assert (got.status, got.result, got.error, got.finished_at) == (
        Status.COMPLETED,
        {"r": [1]},
        None,
        1005.0,
    )
    assert (got.progress, got.progress_message) == (1.0, "all done")
    [attempt] = await store.attempts(started.id)
    assert (attempt.attempt, attempt.status, attempt.started_at, attempt.finished_at) == (
        1,
        Status.COMPLETED,
        1002.0,
        1005.0,
    )
    assert (attempt.result, attempt.error, attempt.traceback) == ({"r": [1]}, None, None)


async def test_a_failed_attempt_keeps_its_error_and_traceback_but_no_result(
    store: Store,
) -> None:
    started = await running(store)
    failed = outcome(
        Status.FAILED, result={"ignored": 1}, error="ValueError: x", traceback="Traceback..."
    )
    assert await store.finish(started.id, OWNER, 1, failed)
    got = await stored(store, started.id)
    assert (got.status, got.result, got.error) == (Status.FAILED, None, "ValueError: x")
    [attempt] = await store.attempts(started.id)
    assert (attempt.status, attempt.error, attempt.traceback, attempt.result) == (
        Status.FAILED,
        "ValueError: x",
        "Traceback...",
        None,
    )


async def test_finish_writes_the_newest_progress_or_keeps_the_stored_one(store: Store) -> None:
    kept, given = await running(store), await running(store, started_at=1003.0)
    await store.set_progress([(kept.id, 0.4, "stored"), (given.id, 0.2, "old")])
    assert await store.finish(kept.id, OWNER, 1, outcome(Status.CANCELED))
    newest = outcome(Status.FAILED, progress=0.7, progress_message="newest")
    assert await store.finish(given.id, OWNER, 1, newest)
    assert (
        (await stored(store, kept.id)).progress,
        (await stored(store, kept.id)).progress_message,
    ) == (0.4, "stored")
    got = await stored(store, given.id)
    assert (got.progress, got.progress_message) == (0.7, "newest")


@pytest.mark.parametrize("status", sorted(MOVES["finish"].targets))
async def test_a_paused_running_task_may_end(store: Store, status: Status) -> None:
    paused = await running(store)
    assert await store.pause(paused.id, OWNER, 1003.0)
    assert await store.finish(paused.id, OWNER, 1, outcome(status))
    assert (await stored(store, paused.id)).status is status


async def test_finish_is_refused_unless_the_owner_holds_that_attempt(store: Store) -> None:
    started = await running(store)
    before = await stored(store, started.id)
    assert not await store.finish(started.id, OTHER, 1, outcome())
    assert not await store.finish(started.id, OWNER, 2, outcome())
    assert not await store.finish("f" * 32, OWNER, 1, outcome())
    assert await stored(store, started.id) == before
    assert await store.attempts(started.id) == []
    assert await store.finish(started.id, OWNER, 1, outcome())
    # Ended: a second finish of the same attempt (a duplicate report) changes nothing.
    ended = await stored(store, started.id)
    assert not await store.finish(started.id, OWNER, 1, outcome(Status.FAILED, at=1009.0))
    assert await stored(store, started.id) == ended
    assert len(await store.attempts(started.id)) == 1


async def test_a_queued_task_cannot_be_finished(store: Store) -> None:
    queued = await store.submit(task())
    assert not await store.finish(queued.id, OWNER, 1, outcome())
    assert (await stored(store, queued.id)).status is Status.QUEUED


# -- retry_later ----------------------------------------------------------------------------------
async def test_retry_later_records_the_failure_and_requeues_the_next_attempt(
    store: Store,
) -> None:
    started = await running(store, queued_at=1000.0, started_at=1002.0)
    await store.set_progress([(started.id, 0.5, "half")])
    assert await store.retry_later(
        started.id, OWNER, 1, "boom", 1500.0, 1004.0, traceback="Traceback: boom"
    )
    got = await stored(store, started.id)
    assert (got.status, got.attempt, got.run_after, got.error) == (
        Status.QUEUED,
        2,
        1500.0,
        "boom",  # visible on the task until the next attempt ends
    )
    assert (got.owner, got.started_at, got.finished_at, got.progress, got.result) == (
        None,
        None,
        None,
        None,
        None,
    )
    [attempt] = await store.attempts(started.id)
    assert (attempt.attempt, attempt.status, attempt.error, attempt.traceback) == (
        1,
        Status.FAILED,
        "boom",
        "Traceback: boom",
    )
    assert (attempt.started_at, attempt.finished_at) == (1002.0, 1004.0)
    assert (await store.worker_stats("W")).finished == 1


async def test_retry_later_is_a_compare_and_set(store: Store) -> None:
    started = await running(store)
    before = await stored(store, started.id)
    assert not await store.retry_later(started.id, OTHER, 1, "boom", 1500.0, 1004.0)
    assert not await store.retry_later(started.id, OWNER, 2, "boom", 1500.0, 1004.0)
    assert await stored(store, started.id) == before
    assert await store.attempts(started.id) == []


# -- interrupted attempts -------------------------------------------------------------------------
async def test_requeue_interrupted_records_the_attempt_and_queues_the_next(store: Store) -> None:
    started = await running(store, started_at=1002.0)
    assert await store.requeue_interrupted(started.id, OWNER, 1, "the server stopped", 1010.0)
    got = await stored(store, started.id)
    assert (got.status, got.attempt, got.owner, got.run_after) == (Status.QUEUED, 2, None, None)
    [attempt] = await store.attempts(started.id)
    assert (attempt.status, attempt.error, attempt.finished_at) == (
        Status.FAILED,
        "the server stopped",
        1010.0,
    )
    [again] = await store.claim("W", claim(OTHER), 1010.0)  # runnable at once
    assert (again.id, again.attempt, again.owner) == (started.id, 2, OTHER)


async def test_fail_interrupted_ends_the_task_failed(store: Store) -> None:
    started = await running(store)
    assert await store.fail_interrupted(started.id, OWNER, 1, "worker is gone", 1010.0)
    got = await stored(store, started.id)
    assert (got.status, got.error, got.finished_at) == (Status.FAILED, "worker is gone", 1010.0)
    [attempt] = await store.attempts(started.id)
    assert (attempt.status, attempt.error) == (Status.FAILED, "worker is gone")
    assert nonzero((await store.worker_stats("W")).by_status) == {"Failed": 1}


@pytest.mark.parametrize("operation", ["requeue_interrupted", "fail_interrupted"])
async def test_an_interrupted_attempt_is_a_compare_and_set(store: Store, operation: str) -> None:
    started = await running(store)
    move = getattr(store, operation)
    assert not await move(started.id, OTHER, 1, "stopped", 1010.0)
    assert not await move(started.id, OWNER, 2, "stopped", 1010.0)
    assert not await move(started.id, None, 1, "stopped", 1010.0)
    assert (await stored(store, started.id)).status is Status.RUNNING
    assert await move(started.id, OWNER, 1, "stopped", 1010.0)
    assert not await move(started.id, OWNER, 1, "stopped", 1011.0)
    assert len(await store.attempts(started.id)) == 1


async def test_a_task_left_running_without_an_owner_can_be_requeued(store: Store) -> None:
    """Rows from before claims had owners: ``owner`` None names them."""
    left = dataclasses.replace(task(), status=Status.RUNNING, started_at=1001.0)
    store.insert_many_now([left])
    assert [t.id for t in await store.held_tasks()] == [left.id]
    assert await store.requeue_interrupted(left.id, None, 1, "the server stopped", 1010.0)
    assert (await stored(store, left.id)).status is Status.QUEUED


# -- the attempt history and the statistics -------------------------------------------------------
async def test_each_attempt_keeps_its_own_traceback(store: Store) -> None:
    first = await running(store, started_at=1002.0)
    assert await store.retry_later(
        first.id, OWNER, 1, "ValueError: one", 1003.0, 1003.0, traceback="tb one"
    )
    [second] = await store.claim("W", claim(), 1004.0)
    assert await store.pause(second.id, OWNER, 1005.0)  # not an ending: nothing recorded
    assert await store.finish(
        second.id, OWNER, 2, outcome(Status.FAILED, 1006.0, error="KeyError", traceback="tb two")
    )
    assert await store.rerun(second.id, 1007.0)
    [third] = await store.claim("W", claim(), 1008.0)
    assert await store.finish(third.id, OWNER, 3, outcome(at=1009.0, result={"r": 1}))
    attempts = await store.attempts(first.id)
    assert [(a.attempt, a.status, a.traceback) for a in attempts] == [
        (1, Status.FAILED, "tb one"),
        (2, Status.FAILED, "tb two"),
        (3, Status.COMPLETED, None),
    ]
    assert attempts[2].result == {"r": 1}


async def test_statistics_count_each_attempt_that_ran(store: Store) -> None:
    first = await running(store, worker="Stats", queued_at=1000.0, started_at=1002.0)
    assert await store.retry_later(first.id, OWNER, 1, "failed", 1003.0, 1003.0)
    [again] = await store.claim("Stats", claim(), 1004.0)
    assert await store.finish(again.id, OWNER, 2, outcome(at=1006.0))
    stats = await store.worker_stats("Stats")
    assert stats.finished == 2
    assert stats.run_time_sum == pytest.approx(1.0 + 2.0)
    assert sum(stats.run_time_hist.values()) == 2
    assert stats.wait_count == 2
    assert nonzero(stats.by_status) == {"Completed": 1}
    per_minute = await store.finished_per_minute("Stats", 0)
    assert sorted(per_minute) == [(16, "Completed", 1), (16, "Failed", 1)]
    assert await store.finished_per_minute("Stats", 17) == []


async def test_finish_many_ends_each_as_finish_would_and_answers_in_order(store: Store) -> None:
    first, second, lost = [await running(store) for _ in range(3)]
    ends = [
        AttemptEnd(first.id, OWNER, 1, outcome(Status.COMPLETED, 1005.0, result={"n": 1})),
        AttemptEnd(lost.id, OTHER, 1, outcome(Status.COMPLETED)),  # not held by OTHER
        AttemptEnd(second.id, OWNER, 1, outcome(Status.FAILED, 1006.0, error="boom")),
    ]
    assert await store.finish_many(ends) == [True, False, True]
    got = [await stored(store, t.id) for t in (first, second, lost)]
    assert [(t.status, t.result, t.error) for t in got] == [
        (Status.COMPLETED, {"n": 1}, None),
        (Status.FAILED, None, "boom"),
        (Status.RUNNING, None, None),
    ]
    assert [len(await store.attempts(t.id)) for t in got] == [1, 1, 0]
    stats = await store.worker_stats("W")
    assert (stats.by_status["Completed"], stats.by_status["Failed"], stats.finished) == (1, 1, 2)
    assert await store.finish_many([], lazy=True) == []
