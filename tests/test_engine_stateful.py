"""The engine under random sequences of everything that can happen to tasks (issue 14).

Hypothesis drives the real engine (``tasky.engine.Engine``) on a real store with submits, the
four actions (cancel, pause, resume, run), config updates, runs that end (succeed or fail; one
worker retries), graceful restarts, and crashes (the server dies a few loop turns after a run
ends, so the outcome may or may not be recorded yet). After every step the engine is settled
(nothing left to do but wait for the runs the machine controls) and compared with a simple
model (tests/engine_model.py): every acknowledged task exists, each store field the model knows
agrees, no more than ``max_tasks`` tasks of a worker hold a slot, FIFO per worker, only moves
``tasky.states.ALLOWED`` has, each ended attempt recorded exactly once, an action refused only
when the state table or the worker says so, and no runnable task left waiting beside a free slot.

Each example owns its event loop and a scratch directory; the memory store runs many examples,
SQLite (a file per example) fewer.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import Awaitable, Coroutine
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tasky.engine import Engine
from tasky.engine.errors import Unsupported
from tasky.settings import Settings
from tasky.states import IllegalMove, Status
from tasky.store import SqliteStore, Store, create_store
from tasky.workers.registry import WorkerRegistry
from tests.engine_model import Model, ModelViolation
from tests.stateful_workers import GATES, WORKERS, Verdict

T = TypeVar("T")

# The engine's loops that live as long as it does (they sleep between rounds): a settled engine
# has no other work pending than these and the runs waiting at their gates.
LONG_LIVED = frozenset(
    {
        "heartbeat_loop",
        "Presence.heartbeat_loop",
        "Dispatcher._poll_loop",
        "Output._flush_loop",
        "Peers._requests_loop",
        "Peers._changes_loop",
    }
)
SETTLE_SECONDS = 30.0
ACTIONS = ("cancel", "pause", "resume", "run")
VERDICTS = ("succeed", "fail")
# Steps (submits) a life of the engine lasts at least before it may restart or crash.
RESTART_EVERY = 3


class StoreKind(abc.ABC):
    """Where the machine's data lives, opened again as a restarted server would."""

    @abc.abstractmethod
    async def open(self, scratch: Path) -> Store: ...

    @abc.abstractmethod
    async def reopen(self, store: Store, scratch: Path) -> Store: ...


class MemoryKind(StoreKind):
    async def open(self, scratch: Path) -> Store:
        store = create_store("memory:")
        await store.open()
        return store

    async def reopen(self, store: Store, scratch: Path) -> Store:
        # The memory store keeps its data across close and open of the same object.
        await store.close()
        await store.open()
        return store


class SqliteKind(StoreKind):
    async def open(self, scratch: Path) -> Store:
        store = SqliteStore(scratch / "tasky.db")
        await store.open()
        return store

    async def reopen(self, store: Store, scratch: Path) -> Store:
        await store.close()
        return await self.open(scratch)


class Fuse:
    """The store as the engine sees it, until the server "crashes": from then on every call
    fails, as if the process were gone (writes already sent may still commit)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.blown = False

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._store, name)
        if not callable(found):
            return found

        def guarded(*args: Any, **kwargs: Any) -> Any:
            if self.blown:
                raise ConnectionError("the server crashed")
            return found(*args, **kwargs)

        return guarded


async def _refusal(call: Awaitable[Any]) -> type[Exception] | None:
    """Which refusal an action met (the API answers them 409 and 400); None: it was done."""
    try:
        await call
    except (IllegalMove, Unsupported) as exc:
        return type(exc)
    return None


class EngineMachine(RuleBasedStateMachine):
    tasks = Bundle("tasks")

    def __init__(self, kind: StoreKind) -> None:
        super().__init__()
        GATES.reset()
        self.kind = kind
        self.loop = asyncio.new_event_loop()
        self.scratch = Path(tempfile.mkdtemp(prefix="tasky-stateful-"))
        self.registry = WorkerRegistry()
        for cls in WORKERS.values():
            self.registry.register(cls)
        # No poll and no heartbeat during an example: the engine must keep going on what it is
        # told, and nothing happens between steps.
        self.settings = Settings(
            data_dir=self.scratch / "data",
            roots=[self.scratch / "files"],
            node_id="machine",
            poll_interval=3600.0,
            lease_seconds=3600.0,
            cancel_wait_seconds=10.0,
        )
        self.model = Model(WORKERS)
        self.acked: set[str] = set()
        self.configs: dict[str, int] = {}
        self.seen = 0
        # Steps since the last restart or crash: they make an example a series of short lives
        # unless held back (hypothesis has no weights for rules).
        self.since_restart = 0
        self.store = self.run(kind.open(self.scratch))
        self.run(self._start_engine())

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def step(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run one step, let the engine settle, and play its events to the model."""

        async def stepped() -> T:
            result = await coro
            await self._settle()
            self._take_events()
            return result

        return self.run(stepped())

    # -- rules -------------------------------------------------------------------------------------
    @rule(
        target=tasks,
        worker=st.sampled_from(sorted(WORKERS)),
        n=st.integers(0, 9),
        count=st.integers(1, 3),
    )
    def submit(self, worker: str, n: int, count: int) -> Any:
        """``count`` tasks one after the other (queues build up behind the few slots)."""

        async def submit_all() -> list[str]:
            return [(await self.engine.submit(worker, {"n": n})).id for _ in range(count)]

        ids = self.step(submit_all())
        self.acked.update(ids)
        self.configs.update(dict.fromkeys(ids, n))
        self.since_restart += 1
        return multiple(*ids)

    @rule(task_id=tasks)
    def cancel(self, task_id: str) -> None:
        self._act(task_id, "cancel")

    @rule(task_id=tasks)
    def pause(self, task_id: str) -> None:
        self._act(task_id, "pause")

    @rule(task_id=tasks)
    def resume(self, task_id: str) -> None:
        self._act(task_id, "resume")

    @rule(task_id=tasks)
    def run_again(self, task_id: str) -> None:
        self._act(task_id, "run")

    @rule(task_id=tasks, n=st.integers(0, 9))
    def update_config(self, task_id: str, n: int) -> None:
        expected = self.model.refusal(task_id, "update")
        got = self.step(_refusal(self.engine.update_config(task_id, {"n": n})))
        assert got is expected, f"update of a {self.model.tasks[task_id].status} task: {got}"
        if got is None:
            self.configs[task_id] = n

    @precondition(lambda self: GATES.running())
    @rule(data=st.data(), verdict=st.sampled_from(VERDICTS))
    def end_run(self, data: st.DataObject, verdict: Verdict) -> None:
        task_id, attempt = data.draw(st.sampled_from(GATES.running()), label="run")
        GATES.end(task_id, attempt, verdict)
        self.step(asyncio.sleep(0))

    @precondition(lambda self: self.since_restart >= RESTART_EVERY)
    @rule()
    def restart(self) -> None:
        self.run(self._restart())

    @precondition(lambda self: GATES.running() and self.since_restart >= RESTART_EVERY)
    @rule(
        data=st.data(),
        verdict=st.sampled_from(VERDICTS),
        turns=st.integers(0, 6),
    )
    def crash(self, data: st.DataObject, verdict: Verdict, turns: int) -> None:
        task_id, attempt = data.draw(st.sampled_from(GATES.running()), label="run")
        self.run(self._crash(task_id, attempt, verdict, turns))

    @precondition(lambda self: self.model.tasks)
    @rule(data=st.data(), count=st.integers(2, 3))
    def together(self, data: st.DataObject, count: int) -> None:
        """Several things at once, with no settling in between (a claim in flight meets an
        action, a run ends while it is paused...). Which of them the engine refuses depends on
        the order it takes them in, so only the checks after the step judge it."""
        task_ids = list(self.model.tasks)
        runs = GATES.running()
        choices = [
            st.tuples(st.just("act"), st.sampled_from(task_ids), st.sampled_from(ACTIONS)),
            st.tuples(st.just("update"), st.sampled_from(task_ids), st.integers(0, 9)),
            st.tuples(st.just("submit"), st.sampled_from(sorted(WORKERS)), st.integers(0, 9)),
        ]
        if runs:
            choices.append(
                st.tuples(st.just("end"), st.sampled_from(runs), st.sampled_from(VERDICTS))
            )
        plan = data.draw(st.lists(st.one_of(choices), min_size=count, max_size=count), "plan")

        async def all_at_once() -> None:
            await asyncio.gather(*(self._do(what, arg, value) for what, arg, value in plan))

        self.step(all_at_once())
        self.since_restart += 1

    async def _do(self, what: str, arg: Any, value: Any) -> None:
        if what == "act":
            await _refusal(self.engine.action(arg, value))
        elif what == "update":
            if await _refusal(self.engine.update_config(arg, {"n": value})) is None:
                self.configs[arg] = value
        elif what == "submit":
            record = await self.engine.submit(arg, {"n": value})
            self.acked.add(record.id)
            self.configs[record.id] = value
        else:
            task_id, attempt = arg
            if (task_id, attempt) in GATES.running():  # not ended by an earlier part
                GATES.end(task_id, attempt, value)

    def _act(self, task_id: str, action: str) -> None:
        expected = self.model.refusal(task_id, action)
        before = self.model.tasks[task_id].status
        got = self.step(_refusal(self.engine.action(task_id, action)))
        assert got is expected, f"{action} of a {before} task: got {got}, expected {expected}"

    # -- the checks after every step ---------------------------------------------------------------
    @invariant()
    def the_store_agrees_with_the_model(self) -> None:
        self.run(self._check_store())

    @invariant()
    def the_runs_here_are_the_tasks_holding_slots(self) -> None:
        holding = sorted((i, t.attempt) for i, t in self.model.tasks.items() if t.holds)
        assert sorted(GATES.running()) == holding

    @invariant()
    def no_runnable_task_waits_beside_a_free_slot(self) -> None:
        for worker, cls in WORKERS.items():
            if len(self.model.holding(worker)) < cls.max_tasks:
                waiting = [
                    i
                    for i, t in self.model.tasks.items()
                    if t.worker == worker and t.status is Status.QUEUED
                ]
                assert not waiting, f"{worker} has a free slot while {waiting} wait"

    async def _check_store(self) -> None:
        assert self.acked <= set(self.model.tasks), "an acknowledged task was never announced"
        held: dict[str, int] = dict.fromkeys(WORKERS, 0)
        for task_id, tracked in self.model.tasks.items():
            record = await self.store.get(task_id)
            assert record is not None, f"task {task_id} is not in the store"
            seen = (record.status, record.attempt, record.owner is not None)
            assert seen == (tracked.status, tracked.attempt, tracked.holds), (
                f"task {task_id}: store {seen}, model {tracked}"
            )
            assert record.config == {"n": self.configs[task_id]}
            recorded = [(a.attempt, a.status) for a in await self.store.attempts(task_id)]
            assert sorted(recorded) == tracked.ended, f"task {task_id}: attempts {recorded}"
            held[record.worker] += record.owner is not None
        for worker, count in held.items():
            assert count <= WORKERS[worker].max_tasks, f"{count} tasks of {worker} hold a slot"
            # The statistics count each attempt that ran once, and every task by its status.
            stats = await self.store.worker_stats(worker)
            assert stats.finished == self.model.ran(worker), f"{worker}: {stats}"
            by_status = {status: n for status, n in stats.by_status.items() if n}
            assert by_status == self.model.by_status(worker), f"{worker}: {stats}"

    # -- the engine's life -------------------------------------------------------------------------
    async def _start_engine(self) -> None:
        self.fuse = Fuse(self.store)
        self.engine = Engine(cast(Store, self.fuse), self.registry, self.settings)
        self.seen = 0
        await self.engine.start()
        await self._settle()
        self._take_events()
        self.since_restart = 0

    async def _restart(self) -> None:
        """A graceful stop and a new engine on the same store: the stop records nothing about
        the runs it abandons, and the start's recovery re-queues or fails them."""
        await self.engine.stop()
        self._take_events()
        await self._check_store()  # everything the old engine committed, it announced
        self.store = await self.kind.reopen(self.store, self.scratch)
        await self._expect_recovery()
        await self._start_engine()

    async def _crash(self, task_id: str, attempt: int, verdict: Verdict, turns: int) -> None:
        """The run ends, and ``turns`` loop turns later the server dies: what it had announced
        by then is known; what it committed without announcing is read from the store."""
        GATES.end(task_id, attempt, verdict)
        for _ in range(turns):
            await asyncio.sleep(0)
        self.fuse.blown = True
        announced = self.engine.events.last_id
        # The process is gone: its remains are cleared away, with every store call failing.
        with contextlib.suppress(Exception):
            await self.engine.stop()
        self._take_events(until=announced)
        self.store = await self.kind.reopen(self.store, self.scratch)
        await self._catch_up_unannounced()
        await self._expect_recovery()
        await self._start_engine()

    async def _catch_up_unannounced(self) -> None:
        """Moves committed after the crash's last event (in queue order, as the store joined
        them): each must still be one the state table allows."""
        changed = []
        for task_id, tracked in self.model.tasks.items():
            record = await self.store.get(task_id)
            assert record is not None
            if record.status is not tracked.status:
                changed.append(record)
        changed.sort(key=lambda r: (r.queued_at or 0.0, r.seq))
        for record in changed:
            self.model.move(record.id, record.status)

    async def _expect_recovery(self) -> None:
        """What the next start's recovery must do with the tasks holding a slot: re-queue those
        of a worker safe to re-run, fail the others (oldest first, as the store re-queues them)."""
        held = sorted(await self.store.held_tasks(), key=lambda r: r.seq)
        holding = {i for i, t in self.model.tasks.items() if t.holds}
        if {r.id for r in held} != holding:
            raise ModelViolation(f"the store holds {[r.id for r in held]}, the model {holding}")
        for record in held:
            recovered = Status.QUEUED if WORKERS[record.worker].idempotent else Status.FAILED
            self.model.move(record.id, recovered)

    async def _settle(self) -> None:
        """Wait until the engine has nothing left to do but wait for the runs at their gates."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_SECONDS
        turns = 0
        while busy := self._busy():
            if loop.time() > deadline:
                raise AssertionError(f"the engine did not settle: {busy}")
            # A few free turns for in-loop work; then short sleeps, for a store's writer thread.
            await asyncio.sleep(0 if turns < 50 else 0.001)
            turns += 1

    def _busy(self) -> list[str]:
        current = asyncio.current_task()
        busy = [
            repr(t.get_coro())
            for t in asyncio.all_tasks(self.loop)
            if t is not current
            and not t.done()
            and getattr(t.get_coro(), "__qualname__", "") not in LONG_LIVED
            and not GATES.parks(t)
        ]
        if self.engine._background._timers:
            busy.append("a timer")
        # Work the engine put off to the end of the loop's turn (plain callbacks, not tasks).
        if self.engine._outcomes.gathering:
            busy.append("ended runs to record")
        if any(lane.dispatch_due for lane in self.engine._lanes.values()):
            busy.append("a dispatch")
        return busy

    def _take_events(self, until: int | None = None) -> None:
        for event_id, event in self.engine.events.since(self.seen):
            if until is not None and event_id > until:
                break
            self.seen = event_id
            if event["type"] == "task.created":
                self.model.created(event["task"], event["worker"], Status(event["status"]))
            elif event["type"] == "task.status":
                self.model.move(event["task"], Status(event["status"]))

    def teardown(self) -> None:
        try:

            async def shut() -> None:
                with contextlib.suppress(Exception):
                    await self.engine.stop()
                await self.store.close()

            self.run(shut())
            self.run(self.loop.shutdown_asyncgens())
        finally:
            self.loop.close()
            shutil.rmtree(self.scratch, ignore_errors=True)


def _run(kind: StoreKind, examples: int, steps: int) -> None:
    run_state_machine_as_test(
        lambda: EngineMachine(kind),
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


@pytest.mark.slow
def test_the_engine_keeps_the_model_on_the_memory_store() -> None:
    _run(MemoryKind(), examples=200, steps=40)


@pytest.mark.slow
def test_the_engine_keeps_the_model_on_sqlite() -> None:
    _run(SqliteKind(), examples=25, steps=30)
