"""The chain store every store exposes as ``store.chains``: chains and their steps, statuses,
named definitions, idempotency keys, and pruning with their tasks."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tasky.ids import new_id
from tasky.states import CHAIN_MOVES, Status
from tasky.store import Store
from tasky.store.chain_base import ChainStore
from tasky.store.chain_records import ChainState, DefinitionRecord, StepAdvance, StepRecord
from tasky.store.records import TaskRecord
from tests.store_contract.backends import StoreFactory
from tests.store_contract.records import (
    WORKER,
    chain,
    claim,
    finished,
    key,
    running,
    steps,
    stored,
    task,
)


async def test_a_chain_and_its_steps_round_trip(store: Store) -> None:
    record = chain(
        name="nightly",
        definition="backup",
        spec={"steps": [{"name": "s0"}], "é": True},
        parameters={"day": 1},
    )
    made = steps(record.id, "a" * 32, None)
    made[0].history = ["b" * 32]
    await store.chains.create(record, made)
    got = await store.chains.get(record.id)
    assert got is not None and got.seq > 0
    assert got == dataclasses.replace(record, seq=got.seq)
    assert await store.chains.steps(record.id) == made
    assert await store.chains.get(new_id()) is None
    assert await store.chains.steps(new_id()) == []


async def test_steps_come_in_definition_order(store: Store) -> None:
    record = chain()
    made = [StepRecord(record.id, name, position) for name, position in (("z", 0), ("a", 1))]
    await store.chains.create(record, list(reversed(made)))
    assert [s.name for s in await store.chains.steps(record.id)] == ["z", "a"]


async def test_a_duplicate_chain_id_raises_and_writes_nothing(
    backend: StoreFactory, store: Store
) -> None:
    record = chain()
    await store.chains.create(record, steps(record.id, None))
    again = dataclasses.replace(chain(), id=record.id)
    with pytest.raises(backend.duplicate_error):
        await store.chains.create(again, [StepRecord(record.id, "extra", 5)])
    assert [s.name for s in await store.chains.steps(record.id)] == ["s0"]


async def test_list_chains_by_status_in_pages(store: Store) -> None:
    running_chains = [chain() for _ in range(3)]
    done = chain(Status.COMPLETED)
    for record in [*running_chains, done]:
        await store.chains.create(record, [])
    page = await store.chains.list_chains(status=Status.RUNNING, limit=2)
    assert [c.id for c in page.chains] == [c.id for c in running_chains[:2]]
    assert page.next_cursor is not None
    rest = await store.chains.list_chains(status=Status.RUNNING, cursor=page.next_cursor)
    assert [c.id for c in rest.chains] == [running_chains[2].id] and rest.next_cursor is None
    newest = await store.chains.list_chains(descending=True, limit=1)
    assert [c.id for c in newest.chains] == [done.id]
    ids = await store.chains.ids_with_status([Status.RUNNING, Status.COMPLETED])
    assert ids == [c.id for c in [*running_chains, done]]
    assert await store.chains.ids_with_status([Status.PAUSED]) == []


async def test_save_steps_writes_each_step_state(store: Store) -> None:
    record = chain()
    made = steps(record.id, None, None)
    await store.chains.create(record, made)
    made[0].state, made[0].task_id, made[0].decided_at = "submitted", "a" * 32, 1001.0
    made[1].state, made[1].error, made[1].rerun_attempt = "failed", "no value", 2
    made[1].history = ["c" * 32]
    await store.chains.save_steps(made)
    await store.chains.save_steps([])
    assert await store.chains.steps(record.id) == made


# -- status moves (sources from tasky.states.CHAIN_MOVES) -----------------------------------------
AT = 1500.0
ChainMove = Callable[[ChainStore, str, list[StepRecord]], Awaitable[bool]]

# Each operation, named as in CHAIN_MOVES, called with the steps it saves.
MOVE_CALLS: dict[str, ChainMove] = {
    "finish": lambda c, i, s: c.finish_chain(i, Status.FAILED, AT, error="boom", steps=s),
    "cancel": lambda c, i, s: c.cancel_chain(i, AT, "canceled", steps=s),
    "pause": lambda c, i, s: c.pause_chain(i),
    "resume": lambda c, i, s: c.resume_chain(i),
    "restart": lambda c, i, s: c.restart_chain(i, steps=s),
}
# The operations whose signature takes steps to save with the move.
SAVES_STEPS = {"finish", "cancel", "restart"}


def test_every_chain_move_is_tested() -> None:
    assert set(MOVE_CALLS) == set(CHAIN_MOVES)


@pytest.mark.parametrize("status", list(Status))
@pytest.mark.parametrize("move", sorted(MOVE_CALLS))
async def test_a_chain_moves_only_from_its_sources(store: Store, move: str, status: Status) -> None:
    record = chain(status, finished_at=900.0, error="old", result=[1], restarts=2)
    made = steps(record.id, None, "a" * 32)
    await store.chains.create(record, made)
    made[0].state, made[0].decided_at = "canceled", AT
    changed = await MOVE_CALLS[move](store.chains, record.id, made)
    got = await store.chains.get(record.id)
    assert got is not None
    assert changed is (status in CHAIN_MOVES[move].sources)
    if changed:
        [target] = CHAIN_MOVES[move].targets - {Status.COMPLETED}  # finish here ends Failed
        assert got.status is target
        saved = await store.chains.steps(record.id)
        assert saved[0].state == ("canceled" if move in SAVES_STEPS else "pending")
    else:
        assert got == dataclasses.replace(record, seq=got.seq)
        assert [s.state for s in await store.chains.steps(record.id)] == ["pending", "submitted"]


@pytest.mark.parametrize("move", sorted(MOVE_CALLS))
async def test_a_missing_chain_does_not_move(store: Store, move: str) -> None:
    assert not await MOVE_CALLS[move](store.chains, new_id(), [])


async def test_finish_records_the_outcome(store: Store) -> None:
    done, failed = chain(), chain()
    for record in (done, failed):
        await store.chains.create(record, [])
    result = {"r": [1, None], "é": 1.5}
    assert await store.chains.finish_chain(done.id, Status.COMPLETED, AT, result=result)
    assert await store.chains.finish_chain(failed.id, Status.FAILED, AT + 1, error="step a")
    got_done, got_failed = await store.chains.get(done.id), await store.chains.get(failed.id)
    assert got_done is not None and got_failed is not None
    assert (got_done.status, got_done.finished_at, got_done.error, got_done.result) == (
        Status.COMPLETED,
        AT,
        None,
        result,
    )
    assert (got_failed.status, got_failed.finished_at, got_failed.error, got_failed.result) == (
        Status.FAILED,
        AT + 1,
        "step a",
        None,
    )


@pytest.mark.parametrize("status", [Status.CANCELED, Status.PAUSED, Status.QUEUED])
async def test_a_chain_finishes_only_completed_or_failed(store: Store, status: Status) -> None:
    record = chain()
    await store.chains.create(record, [])
    with pytest.raises(ValueError, match="cannot finish"):
        await store.chains.finish_chain(record.id, status, AT)
    got = await store.chains.get(record.id)
    assert got is not None and got.status is Status.RUNNING


async def test_cancel_records_when_and_why(store: Store) -> None:
    record = chain(Status.PAUSED)
    await store.chains.create(record, [])
    assert await store.chains.cancel_chain(record.id, AT, "stopped by ci")
    got = await store.chains.get(record.id)
    assert got is not None
    assert (got.status, got.finished_at, got.error) == (Status.CANCELED, AT, "stopped by ci")


async def test_pause_and_resume_change_only_the_status(store: Store) -> None:
    record = chain(result={"partial": True})
    await store.chains.create(record, [])
    assert await store.chains.pause_chain(record.id)
    paused = await store.chains.get(record.id)
    assert paused is not None
    assert paused == dataclasses.replace(record, seq=paused.seq, status=Status.PAUSED)
    assert await store.chains.resume_chain(record.id)
    assert await store.chains.get(record.id) == dataclasses.replace(record, seq=paused.seq)


async def test_restart_clears_the_end_and_counts(store: Store) -> None:
    record = chain()
    await store.chains.create(record, [])
    assert await store.chains.finish_chain(record.id, Status.FAILED, AT, error="x", result=[1])
    assert await store.chains.restart_chain(record.id)
    assert await store.chains.cancel_chain(record.id, AT + 1, "canceled")
    assert await store.chains.restart_chain(record.id)
    got = await store.chains.get(record.id)
    assert got is not None
    assert (got.status, got.finished_at, got.error, got.result, got.restarts) == (
        Status.RUNNING,
        None,
        None,
        None,
        2,
    )


async def test_two_racing_moves_have_one_winner(store: Store) -> None:
    record = chain()
    await store.chains.create(record, [])
    # Both start from Running only: whichever commits first leaves the other nothing to move.
    won = await asyncio.gather(
        store.chains.pause_chain(record.id),
        store.chains.finish_chain(record.id, Status.COMPLETED, AT),
    )
    assert sorted(won) == [False, True]


async def test_active_tasks_of_chains_in_some_statuses(store: Store) -> None:
    canceled, going = chain(Status.CANCELED), chain()
    for record in (canceled, going):
        await store.chains.create(record, [])
    started = await running(store, chain_id=canceled.id)
    await finished(store, chain_id=canceled.id)
    queued = await store.submit(task(chain_id=canceled.id))
    await store.submit(task(chain_id=going.id))
    await store.submit(task(chain_id=new_id()))  # its chain is not stored
    found = await store.chains.active_tasks_of([Status.CANCELED])
    assert found == [(canceled.id, started.id), (canceled.id, queued.id)]
    assert len(await store.chains.active_tasks_of([Status.RUNNING, Status.CANCELED])) == 3


# -- named definitions ----------------------------------------------------------------------------
async def test_definitions_put_get_list_delete(store: Store) -> None:
    first = DefinitionRecord("b", {"steps": [{"name": "x"}]}, 1000.0, 1000.0)
    assert await store.chains.put_definition(first)
    assert await store.chains.put_definition(DefinitionRecord("a", {"steps": []}, 1001.0, 1001.0))
    replaced = DefinitionRecord("b", {"steps": [{"name": "y"}]}, 1500.0, 1500.0)
    assert not await store.chains.put_definition(replaced)  # not new
    got = await store.chains.get_definition("b")
    assert got is not None
    assert (got.spec, got.created_at, got.updated_at) == (
        {"steps": [{"name": "y"}]},
        1000.0,
        1500.0,
    )
    assert [d.name for d in await store.chains.list_definitions()] == ["a", "b"]
    assert await store.chains.delete_definition("a")
    assert not await store.chains.delete_definition("a")
    assert await store.chains.get_definition("a") is None


# -- idempotency keys -----------------------------------------------------------------------------
async def test_a_keyed_chain_is_created_once(backend: StoreFactory, store: Store) -> None:
    first = chain()
    keyed = key(target_id=first.id)
    assert await store.chains.create_with_key(first, steps(first.id, None), keyed) is None
    second = chain()
    found = await store.chains.create_with_key(second, steps(second.id, None), key(at=1001.0))
    assert found == keyed
    assert await store.chains.get(second.id) is None and await store.chains.steps(second.id) == []
    # Chain and key in one write: a chain that cannot be created leaves no key.
    with pytest.raises(backend.duplicate_error):
        await store.chains.create_with_key(first, [], key("dup"))
    assert await store.find_key("ci", "dup", 0.0) is None


# -- pruning --------------------------------------------------------------------------------------
async def test_prune_finished_chains_with_steps_and_tasks(store: Store) -> None:
    # A finished chain and a running one whose finished_at is set (as by hand): only the
    # finished one may go.
    done_chain = chain(Status.COMPLETED, finished_at=2000.0)
    running_chain = chain(finished_at=2000.0)
    done_tasks = [await finished(store, chain_id=done_chain.id) for _ in range(2)]
    live_done = await finished(store, chain_id=running_chain.id)
    live = await store.submit(task(chain_id=running_chain.id))
    for t in [*done_tasks, live_done, live]:
        await store.append_logs([(t.id, 1.0, "line")], 10)
    await store.chains.create(done_chain, steps(done_chain.id, *(t.id for t in done_tasks)))
    await store.chains.create(running_chain, steps(running_chain.id, live_done.id, live.id))
    assert await store.chains.count_prunable(1999.0) == 0
    assert await store.chains.count_prunable(5000.0) == 1
    # Chain tasks are not the task store's to prune.
    assert await store.prune_finished(5000.0, None, 100) == 0
    assert (await store.chains.prune_finished(5000.0, 10)).chains == 1
    assert await store.chains.get(done_chain.id) is None
    assert await store.chains.steps(done_chain.id) == []
    for t in done_tasks:
        assert await store.get(t.id) is None
        assert await store.logs(t.id) == [] and await store.attempts(t.id) == []
    assert await store.chains.get(running_chain.id) is not None
    assert len(await store.chains.steps(running_chain.id)) == 2
    for t in (live_done, live):
        assert await stored(store, t.id) is not None
    assert (await store.chains.prune_finished(5000.0, 10)).chains == 0
    assert (await store.worker_stats("W")).by_status["Completed"] == 3


async def test_a_finished_chain_with_an_unfinished_task_is_kept(store: Store) -> None:
    record = chain(Status.FAILED, finished_at=2000.0)
    straggler = await store.submit(task(chain_id=record.id))
    await store.chains.create(record, steps(record.id, straggler.id))
    assert await store.chains.count_prunable(5000.0) == 0
    assert (await store.chains.prune_finished(5000.0, 10)).chains == 0
    assert await store.cancel(straggler.id, 2001.0)
    assert (await store.chains.prune_finished(5000.0, 10)).chains == 1


async def test_chain_pruning_keeps_the_limit_oldest_first(store: Store) -> None:
    made = [chain(Status.COMPLETED, finished_at=3000.0 - n) for n in range(3)]
    for record in made:
        await store.chains.create(record, [])
    assert (await store.chains.prune_finished(5000.0, 2)).chains == 2
    assert [c.id for c in (await store.chains.list_chains()).chains] == [made[0].id]


async def test_a_long_chain_is_pruned_in_writes_of_at_most_limit_rows(store: Store) -> None:
    record = chain(Status.COMPLETED, finished_at=2000.0)
    made = [await finished(store, chain_id=record.id) for _ in range(1000)]
    await store.chains.create(record, steps(record.id, *(t.id for t in made)))
    left = {t.id for t in made}
    steps_left = 1000
    writes = 0
    while True:
        pruned = await store.chains.prune_finished(5000.0, 100)
        writes += 1
        # What the write says it deleted is what is gone, and never more than the limit.
        page = await store.list_tasks(chain_id=record.id, limit=1000)
        still = {t.id for t in page.tasks}
        assert still <= left
        assert len(left) - len(still) == pruned.tasks <= 100
        left = still
        now_steps = len(await store.chains.steps(record.id))
        assert steps_left - now_steps == pruned.steps
        steps_left = now_steps
        assert pruned.rows <= 100
        if pruned.chains:
            break
        # Half pruned, the chain is still there, finished and prunable: nothing lost on a crash.
        assert await store.chains.count_prunable(5000.0) == 1
        got = await store.chains.get(record.id)
        assert got is not None and got.status is Status.COMPLETED
        assert sum((await store.chains.step_counts(record.id)).values()) == steps_left
        assert writes < 100
    # 1,000 tasks, then 1,000 steps, then the chain row: 21 writes of at most 100 rows.
    assert writes >= 20 and not left and steps_left == 0
    assert await store.chains.get(record.id) is None
    assert await store.chains.count_prunable(5000.0) == 0
    assert (await store.chains.prune_finished(5000.0, 100)).rows == 0
    assert (await store.worker_stats("W")).by_status["Completed"] == 1000


async def test_a_write_finishes_short_chains_whole_within_its_limit(store: Store) -> None:
    made = [chain(Status.COMPLETED, finished_at=3000.0 - n) for n in range(3)]
    for record in made:
        done = [await finished(store, chain_id=record.id) for _ in range(2)]
        await store.chains.create(record, steps(record.id, *(t.id for t in done)))
    # Oldest first: 5 rows each, so 12 rows finish two chains and start on the third.
    first = await store.chains.prune_finished(5000.0, 12)
    assert (first.chains, first.rows) == (2, 12)
    assert [c.id for c in (await store.chains.list_chains()).chains] == [made[0].id]
    rest = await store.chains.prune_finished(5000.0, 12)
    assert (rest.chains, rest.rows) == (1, 3)
    assert await store.chains.count_prunable(5000.0) == 0


async def test_a_half_pruned_chain_reads_fine(store: Store) -> None:
    record = chain(Status.FAILED, finished_at=2000.0, error="boom")
    made = [await finished(store, chain_id=record.id) for _ in range(4)]
    await store.chains.create(record, steps(record.id, *(t.id for t in made)))
    assert (await store.chains.prune_finished(5000.0, 3)).tasks == 3
    got = await store.chains.get(record.id)
    assert got is not None and got.status is Status.FAILED
    assert len(await store.chains.steps(record.id)) == 4
    assert len(await store.chains.steps_page(record.id, limit=2)) == 2
    # Steps whose task is gone show as Pending (as a recorded step whose task does not exist).
    assert await store.chains.step_counts(record.id) == {"Pending": 3, "Completed": 1}
    assert await store.chains.ids_with_status([Status.FAILED]) == [record.id]
    assert await store.chains.count_prunable(5000.0) == 1
    assert (await store.chains.prune_finished(5000.0, 100)).chains == 1


# -- long chains: light reads, pages, counts, and the compare-and-set advance ---------------------
async def test_state_reads_status_and_restarts_only(store: Store) -> None:
    record = chain(Status.PAUSED, restarts=3)
    await store.chains.create(record, [])
    assert await store.chains.state(record.id) == ChainState(Status.PAUSED, 3)
    assert await store.chains.restart_chain(record.id) is False  # Paused: not restartable
    assert await store.chains.cancel_chain(record.id, AT, "stop")
    assert await store.chains.restart_chain(record.id)
    assert await store.chains.state(record.id) == ChainState(Status.RUNNING, 4)
    assert await store.chains.state(new_id()) is None


async def test_steps_come_a_page_at_a_time_in_definition_order(store: Store) -> None:
    record = chain()
    made = [StepRecord(record.id, f"n{99 - i}", i) for i in range(25)]  # names sort backwards
    other = chain()
    await store.chains.create(record, list(reversed(made)))
    await store.chains.create(other, steps(other.id, None, None))
    first = await store.chains.steps_page(record.id, limit=10)
    assert first == made[:10]
    second = await store.chains.steps_page(record.id, after=first[-1].position, limit=10)
    assert second == made[10:20]
    last = await store.chains.steps_page(record.id, after=second[-1].position, limit=10)
    assert last == made[20:]
    assert await store.chains.steps_page(record.id, after=24) == []
    assert await store.chains.steps_page(new_id()) == []


async def test_step_counts_follow_the_steps_and_their_tasks(store: Store) -> None:
    record = chain()
    done = await finished(store, chain_id=record.id)
    failed = await finished(store, Status.FAILED, chain_id=record.id)
    queued = await store.submit(task("Other", chain_id=record.id))
    made = steps(record.id, done.id, failed.id, queued.id, new_id(), None, None)
    made[5].state = "skipped"
    await store.chains.create(record, made)
    counts = await store.chains.step_counts(record.id)
    # The recorded step whose task does not exist is Pending, as is the one not started.
    assert counts == {"Completed": 1, "Failed": 1, "Queued": 1, "Pending": 2, "Skipped": 1}
    # A step whose id is chosen but whose task does not exist yet is Pending; once its task
    # exists it shows the task's status, even before it is marked started.
    made[4].state = "pending"
    await store.chains.save_steps([made[4]])
    assert (await store.chains.step_counts(record.id))["Pending"] == 2
    made[2].state = "pending"
    await store.chains.save_steps([made[2]])
    assert (await store.chains.step_counts(record.id))["Queued"] == 1
    # A restart re-runs the failed step: Queued until its next attempt exists.
    made[1].state, made[1].rerun_attempt = "rerun", 2
    await store.chains.save_steps([made[1]])
    counts = await store.chains.step_counts(record.id)
    assert counts == {"Completed": 1, "Queued": 2, "Pending": 2, "Skipped": 1}
    assert await store.chains.step_counts(new_id()) == {}


async def test_claim_steps_chooses_ids_of_pending_steps_of_a_running_chain(
    store: Store,
) -> None:
    record = chain()
    made = steps(record.id, None, "a" * 32, None, None)
    await store.chains.create(record, made)
    got = await store.chains.claim_steps(
        record.id, [("s2", "c" * 32), ("s1", "b" * 32), ("nope", "d" * 32), ("s0", "e" * 32)]
    )
    assert got == ["s2", "s0"]  # s1 started already: its task id stays
    saved = {s.name: (s.state, s.task_id) for s in await store.chains.steps(record.id)}
    assert saved == {
        "s0": ("pending", "e" * 32),  # chosen, not started: still pending
        "s1": ("submitted", "a" * 32),
        "s2": ("pending", "c" * 32),
        "s3": ("pending", None),
    }
    # An id once chosen stays: a second claim takes nothing.
    assert await store.chains.claim_steps(record.id, [("s0", "f" * 32)]) == []
    assert await store.chains.claim_steps(record.id, []) == []
    assert await store.chains.claim_steps(new_id(), [("s0", "f" * 32)]) == []
    # A step skipped or failed without a task is not pending: nothing to claim.
    made[3].state = "skipped"
    await store.chains.save_steps([made[3]])
    assert await store.chains.claim_steps(record.id, [("s3", "f" * 32)]) == []


@pytest.mark.parametrize("status", sorted(set(Status) - {Status.RUNNING}))
async def test_claim_steps_needs_a_running_chain(store: Store, status: Status) -> None:
    record = chain(status)
    await store.chains.create(record, steps(record.id, None))
    assert await store.chains.claim_steps(record.id, [("s0", "a" * 32)]) == []
    [step] = await store.chains.steps(record.id)
    assert (step.state, step.task_id) == ("pending", None)


async def test_two_concurrent_advances_of_one_step_create_one_task(
    backend: StoreFactory, store: Store
) -> None:
    """Two runners saw the same step finish and both advance the chain: each picks a task id
    for the next step and claims it; one claim wins, and both create the step's task under the
    id that won. One task, recorded on the step."""

    async def advance(chain_id: str) -> bool:
        await store.chains.claim_steps(chain_id, [("s1", new_id())])
        [_, step] = await store.chains.steps(chain_id)
        assert step.task_id is not None
        try:
            await store.submit(dataclasses.replace(task(chain_id=chain_id), id=step.task_id))
        except backend.duplicate_error:
            return False  # the other runner created it first: nothing left to do
        return True

    for _ in range(5):  # the race, run again on a fresh chain each time
        record = chain()
        await store.chains.create(record, steps(record.id, "a" * 32, None))
        created = await asyncio.gather(advance(record.id), advance(record.id), advance(record.id))
        assert created.count(True) == 1
        page = await store.list_tasks(chain_id=record.id)
        [_, step] = await store.chains.steps(record.id)
        assert [t.id for t in page.tasks] == [step.task_id]


# -- a step started in the commit of the step before it (ChainStore.advance) ---------------------
async def _ended_step(store: Store, status: Status = Status.COMPLETED) -> tuple[str, TaskRecord]:
    """A Running chain whose step s0 ran a task that ended ``status``; s1 has its id chosen
    (pending), s2 has none."""
    ended = await finished(store, status)
    record = chain()
    await store.chains.create(record, steps(record.id, ended.id, None, None))
    assert await store.chains.claim_steps(record.id, [("s1", new_id())]) == ["s1"]
    return record.id, ended


def _advance(chain_id: str, ended: TaskRecord, next_id: str, **kw: Any) -> StepAdvance:
    fields: dict[str, Any] = {
        "chain_id": chain_id,
        "restarts": 0,
        "after_task": ended.id,
        "after_attempt": ended.attempt,
        "after_status": ended.status,
        "steps": [StepRecord(chain_id, "s1", 1, "submitted", next_id)],
        "claims": [("s2", "c" * 32)],
    }
    fields.update(kw)
    return StepAdvance(**fields)


async def _s1_id(store: Store, chain_id: str) -> str:
    [_, s1, _] = await store.chains.steps(chain_id)
    assert s1.task_id is not None
    return s1.task_id


async def test_advance_starts_the_next_step_with_the_end_of_the_one_before(store: Store) -> None:
    chain_id, ended = await _ended_step(store)
    next_id = await _s1_id(store, chain_id)
    new = dataclasses.replace(task(WORKER, 3000.0, chain_id=chain_id), id=next_id)
    done = await store.chains.advance(_advance(chain_id, ended, next_id), new, claim())
    if not store.chains.advances:
        # A store that cannot write it with the end writes nothing: the runner goes the usual way.
        assert done is None
        assert await store.get(next_id) is None
        assert [s.state for s in await store.chains.steps(chain_id)] == ["submitted"] + [
            "pending"
        ] * 2
        return
    assert done is not None
    created, claimed = done
    assert claimed == ["s2"]
    assert created.id == next_id and created.status is Status.RUNNING  # started: a free slot
    assert (await stored(store, next_id)).status is Status.RUNNING
    saved = {s.name: (s.state, s.task_id) for s in await store.chains.steps(chain_id)}
    assert saved == {
        "s0": ("submitted", ended.id),
        "s1": ("submitted", next_id),
        "s2": ("pending", "c" * 32),
    }


@pytest.mark.parametrize("change", ["status", "attempt", "paused", "restarted", "missing"])
async def test_advance_writes_nothing_unless_the_end_and_the_chain_are_as_planned(
    store: Store, change: str
) -> None:
    """The end it starts from did not happen as planned (its finish lost the lease, another
    node ended it otherwise), or the chain moved since the plan: nothing is written."""
    chain_id, ended = await _ended_step(store)
    next_id = await _s1_id(store, chain_id)
    kw: dict[str, Any] = {}
    if change == "status":
        kw["after_status"] = Status.FAILED
    elif change == "attempt":
        kw["after_attempt"] = ended.attempt + 1
    elif change == "paused":
        assert await store.chains.pause_chain(chain_id)
    elif change == "restarted":
        kw["restarts"] = 1
    else:
        kw["after_task"] = new_id()
    new = dataclasses.replace(task(WORKER, 3000.0, chain_id=chain_id), id=next_id)
    assert (
        await store.chains.advance(_advance(chain_id, ended, next_id, **kw), new, claim()) is None
    )
    assert await store.get(next_id) is None
    saved = [(s.state, s.task_id) for s in await store.chains.steps(chain_id)]
    assert saved == [("submitted", ended.id), ("pending", next_id), ("pending", None)]


async def test_advance_of_a_step_whose_task_exists_raises_and_writes_nothing(
    backend: StoreFactory, store: Store
) -> None:
    """Two runners start the same step: the second one's task id is taken, and neither its
    step marks nor its claims are written."""
    chain_id, ended = await _ended_step(store)
    if not store.chains.advances:
        pytest.skip("this store does not start steps with the end of the one before")
    next_id = await _s1_id(store, chain_id)
    await store.submit(dataclasses.replace(task(WORKER, 3000.0, chain_id=chain_id), id=next_id))
    new = dataclasses.replace(task(WORKER, 3001.0, chain_id=chain_id), id=next_id)
    marks = [StepRecord(chain_id, "s1", 1, "submitted", next_id, error="x")]
    with pytest.raises(backend.duplicate_error):
        await store.chains.advance(_advance(chain_id, ended, next_id, steps=marks), new, claim())
    saved = [(s.state, s.task_id, s.error) for s in await store.chains.steps(chain_id)]
    assert saved == [
        ("submitted", ended.id, None),
        ("pending", next_id, None),
        ("pending", None, None),
    ]
    page = await store.list_tasks(chain_id=chain_id)
    assert [t.id for t in page.tasks] == [next_id]


async def test_the_list_leaves_out_definitions_parameters_and_results(store: Store) -> None:
    """A page of the list costs the same for long chains as for short ones: each chain comes
    without its definition, parameters and result (``get`` has them)."""
    spec = {"steps": [{"name": f"s{i}", "worker": "W"} for i in range(1000)]}
    record = chain(name="long", definition="d", spec=spec, parameters={"p": 1})
    await store.chains.create(record, [])
    assert await store.chains.finish_chain(record.id, Status.COMPLETED, 2000.0, result={"r": 2})
    [listed] = (await store.chains.list_chains()).chains
    whole = await store.chains.get(record.id)
    assert whole is not None and whole.spec == spec and whole.result == {"r": 2}
    assert listed == dataclasses.replace(whole, spec={}, parameters={}, result=None)
