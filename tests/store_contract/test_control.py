"""cancel, pause, resume, rerun and update_config: which statuses each starts from (taken from
tasky.states.MOVES), what it changes, and that a refused one changes nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest

from tasky.states import MOVES, Status
from tasky.store import Store, TaskRecord
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

AT = 1100.0


async def _in_state(store: Store, state: str) -> TaskRecord:
    """A task in one of the situations a control may meet."""
    if state == "queued":
        return await store.submit(task())
    if state == "held back":
        queued = await store.submit(task())
        assert await store.pause(queued.id, None, 1003.0)
    elif state == "running":
        return await running(store)
    elif state == "paused running":
        queued = await running(store)
        assert await store.pause(queued.id, OWNER, 1003.0)
    else:
        queued = await running(store)
        assert await store.finish(queued.id, OWNER, 1, outcome(Status(state.capitalize())))
    return await stored(store, queued.id)


STATES = {
    # state: (its status, whether it holds a running slot)
    "queued": (Status.QUEUED, False),
    "held back": (Status.PAUSED, False),
    "running": (Status.RUNNING, True),
    "paused running": (Status.PAUSED, True),
    "completed": (Status.COMPLETED, False),
    "failed": (Status.FAILED, False),
    "canceled": (Status.CANCELED, False),
}


@dataclass(frozen=True)
class Control:
    sources: frozenset[Status]
    held: bool | None  # it applies to tasks holding a slot (True), waiting ones (False), any
    target: Status | None  # None: the status stays
    call: Callable[[Store, str], Awaitable[bool]]


CONTROLS = {
    "cancel": Control(
        MOVES["cancel"].sources,
        MOVES["cancel"].held,
        Status.CANCELED,
        lambda s, i: s.cancel(i, AT),
    ),
    "hold back": Control(
        MOVES["pause"].sources, False, Status.PAUSED, lambda s, i: s.pause(i, None, 1003.0)
    ),
    "pause by its owner": Control(
        MOVES["pause"].sources, True, Status.PAUSED, lambda s, i: s.pause(i, OWNER, 1003.0)
    ),
    "resume held back": Control(
        MOVES["resume"].sources, False, Status.QUEUED, lambda s, i: s.resume(i, None, AT)
    ),
    "resume by its owner": Control(
        MOVES["resume"].sources, True, Status.RUNNING, lambda s, i: s.resume(i, OWNER, AT)
    ),
    "rerun": Control(
        MOVES["rerun"].sources, MOVES["rerun"].held, Status.QUEUED, lambda s, i: s.rerun(i, AT)
    ),
    # Not a move: only a task that has not started can take a new config.
    "update_config": Control(
        frozenset({Status.QUEUED, Status.PAUSED}),
        False,
        None,
        lambda s, i: s.update_config(i, {"n": 2}),
    ),
}


def _allowed(control: Control, state: str) -> bool:
    status, holds = STATES[state]
    return status in control.sources and control.held in (None, holds)


@pytest.mark.parametrize("state", list(STATES))
@pytest.mark.parametrize("name", list(CONTROLS))
async def test_a_control_moves_exactly_the_statuses_the_table_allows(
    store: Store, name: str, state: str
) -> None:
    control = CONTROLS[name]
    subject = await _in_state(store, state)
    before = await stored(store, subject.id)
    moved = await control.call(store, subject.id)
    after = await stored(store, subject.id)
    assert moved is _allowed(control, state)
    if not moved:
        assert after == before
    else:
        assert after.status is (control.target or before.status)


@pytest.mark.parametrize("name", list(CONTROLS))
async def test_a_control_of_a_missing_task_is_refused(store: Store, name: str) -> None:
    assert not await CONTROLS[name].call(store, "f" * 32)


async def test_another_owner_cannot_pause_or_resume_a_running_task(store: Store) -> None:
    started = await running(store)
    assert not await store.pause(started.id, OTHER, 1003.0)
    assert await store.pause(started.id, OWNER, 1003.0)
    assert not await store.resume(started.id, OTHER, AT)
    assert (await stored(store, started.id)).status is Status.PAUSED


async def test_cancel_ends_a_waiting_task_at_the_given_time(store: Store) -> None:
    queued = await store.submit(task())
    assert await store.cancel(queued.id, AT)
    got = await stored(store, queued.id)
    assert (got.status, got.finished_at, got.started_at) == (Status.CANCELED, AT, None)


async def test_rerun_starts_a_clean_next_attempt(store: Store) -> None:
    started = await running(store)
    await store.set_progress([(started.id, 0.5, "half")])
    assert await store.finish(started.id, OWNER, 1, outcome(Status.FAILED, error="boom"))
    assert await store.rerun(started.id, AT)
    got = await stored(store, started.id)
    assert (got.status, got.attempt, got.queued_at) == (Status.QUEUED, 2, AT)
    assert (got.started_at, got.finished_at, got.owner, got.run_after) == (None,) * 4
    assert (got.result, got.error, got.progress, got.progress_message) == (None,) * 4
    assert len(await store.attempts(started.id)) == 1  # a rerun ends no attempt


async def test_update_config_keeps_the_status_and_the_place_in_the_queue(store: Store) -> None:
    first, second = await store.submit(task()), await store.submit(task(queued_at=1001.0))
    assert await store.update_config(first.id, {"nested": ["new"]})
    got = await stored(store, first.id)
    assert (got.status, got.config, got.queued_at) == (Status.QUEUED, {"nested": ["new"]}, 1000.0)
    claimed = await store.claim("W", claim(), 1002.0)
    assert [t.id for t in claimed] == [first.id, second.id]


async def test_status_counts_follow_every_change(store: Store) -> None:
    for state in reversed(STATES):  # "queued" last: the running ones claim what is queued
        await _in_state(store, state)
    assert nonzero((await store.worker_stats("W")).by_status) == {
        "Queued": 1,
        "Running": 1,
        "Paused": 2,
        "Completed": 1,
        "Failed": 1,
        "Canceled": 1,
    }
    assert nonzero((await store.worker_stats("Nobody")).by_status) == {}
