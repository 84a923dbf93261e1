"""The chain runner: turns task status changes into the next steps, and controls whole chains.

Every step is an ordinary task (``engine.submit(..., chain_id=...)``), so the engine's limits,
queue, retries, logs and statistics apply unchanged. The runner listens to the engine's committed
status changes; each change *kicks* the step's chain, and a per-chain pump re-reads the chain and
applies :func:`tasky.chains.plan.decide`. Reading the truth from the store each time (rather than
trusting the event) is what makes the same code correct after a crash.

Exactly-once step creation: a step's task id is chosen and committed on the chain *before* the
task is submitted with that id. After a crash the runner finds either the task (and follows it)
or no task (and submits it under the recorded id): never a second task for one step. Choosing
the id is a compare-and-set (``claim_steps``: the id of a pending step that has none), so when two
runners see the same step finish, both create its task under the one id that won, and the store
refuses the second. The ids of a stage are chosen while the stage before it starts, so starting
a step waits for one write: its task's (with the mark that the step started).

One commit per step: when a step's task is about to end, the engine tells the runner before the
end is written (``on_task_finishing``). When the chain is tracked and its plan with that end is
simply to start the next stage's one step (its id chosen already), the runner starts it at once,
with a write that joins the end's group commit (``ChainStore.advance``) and applies only if the
end did, in the same transaction: a crash keeps both or neither. Any other case (or a store that
cannot) goes the usual way: the end commits, its event kicks the chain's pump, and the pump starts
the step in a commit of its own.

Per-step cost: a long chain is read whole once, when the runner first meets it (or after a
restart, or when another runner advanced it). While it runs, the runner keeps it (a *tracked*
chain) and each pass reads only the chain's status and the tasks that moved since the last pass,
then plans from the stage that runs now; so a step of a 10,000-step chain costs what a step of a
10-step chain does.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
from collections import ChainMap
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from pydantic import ValidationError

from tasky import clock
from tasky.chains.model import ChainSpec, StageInfo, StepSpec, stages_of
from tasky.chains.plan import Plan, Progress, StepView, decide
from tasky.chains.refs import RefError, render
from tasky.chains.scope import Scope, failure_text
from tasky.echo import shown
from tasky.engine import Engine
from tasky.engine.errors import Draining, NotFound, QueueFull, Unsupported, WorkerDisabled
from tasky.ids import is_valid_id, new_id
from tasky.states import ACTIVE, CHAIN_ACTION_SOURCES, FINISHED, IllegalMove, Status
from tasky.store.chain_base import ChainStore
from tasky.store.chain_records import ChainPage, ChainRecord, StepAdvance, StepRecord, copy_step
from tasky.store.records import Claim, IdempotencyRecord, Outcome, TaskRecord, copy_task

log = logging.getLogger("tasky.chains")

# A pass that settles steps at once (skips, refused submissions) re-plans; bounded for safety.
_MAX_ROUNDS = 1000
_ROOM_POLL_SECONDS = 1.0
_CONTROL_TRIES = 200
# Parsed definitions kept for reading chains a page at a time (a chain's definition never
# changes, and a long one takes a while to parse).
_PARSED_KEPT = 64


class ChainConflict(Exception):
    """The chain's status does not allow this action (HTTP 409)."""

    def __init__(self, current: Status, action: str) -> None:
        super().__init__(f"the chain is {current.value}: cannot {action}")
        self.current = current


class Loaded:
    """A chain read from the store with its parsed definition and its steps' views.

    A tracked chain (kept between passes) also knows how far its stages have ended
    (``progress``) and which step each of its tasks belongs to (``by_task``)."""

    def __init__(
        self,
        chain: ChainRecord,
        spec: ChainSpec,
        stages: list[StageInfo],
        views: dict[str, StepView],
    ) -> None:
        self.chain = chain
        self.spec = spec
        self.stages = stages
        self.views = views
        self.progress: Progress | None = None
        self.by_task = {v.record.task_id: v for v in views.values() if v.record.task_id}

    def plan(self) -> Plan:
        plan = decide(self.spec, self.stages, self.views, self.progress)
        self.progress = plan.progress()
        return plan

    def ordered(self) -> list[StepView]:
        return [self.views[s.name] for stage in self.stages for s in stage.steps]


@dataclasses.dataclass(slots=True)
class Parsed:
    """A chain's definition, parsed, and where each step sits in it."""

    spec: ChainSpec
    stages: list[StageInfo]
    places: dict[str, tuple[StepSpec, StageInfo]]


@dataclasses.dataclass(slots=True)
class StepsPage:
    """Some of a chain's steps, in definition order, and the cursor of the next ones."""

    chain: ChainRecord
    parsed: Parsed
    views: list[StepView]
    next_cursor: int | None


class ChainRunner:
    def __init__(self, engine: Engine, store: ChainStore) -> None:
        self.engine = engine
        self.store = store
        self._dirty: set[str] = set()
        self._pumps: dict[str, asyncio.Task[None]] = {}
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}
        # Chains whose last pass failed unexpectedly: when to try again (backing off).
        self._backoff: dict[str, float] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._stopping = False
        self._listeners: list[Callable[[str, Status], None]] = []
        # Running chains kept between passes, and the tasks of each chain that moved since its
        # last pass (filled by the engine's events whether the chain is tracked or not, so an
        # event that arrives while a chain is being read is not lost).
        self._tracked: dict[str, Loaded] = {}
        self._parsed: dict[str, Parsed] = {}
        self._changed_tasks: dict[str, set[str]] = {}
        # Per chain, the task whose end it starts the next step with, in the end's own commit,
        # until that end's event arrives (it needs no pass: see on_task_finishing); and the
        # tasks doing it.
        self._advancing: dict[str, str] = {}
        self._advancers: set[asyncio.Task[None]] = set()

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Listen to the engine, then pick up what a previous run of the server left mid-way."""
        self.engine.add_listener(self.on_task_status)
        if self.store.advances:
            self.engine.add_finishing_listener(self.on_task_finishing)
        for chain_id in await self.store.ids_with_status([Status.RUNNING, Status.PAUSED]):
            self.kick(chain_id)
        # A crash right after a cancel was committed, before it reached every task.
        for chain_id, _ in await self.store.active_tasks_of([Status.CANCELED]):
            self.kick(chain_id)

    async def stop(self) -> None:
        self._stopping = True
        for timer in self._timers.values():
            timer.cancel()
        pumps = [*self._pumps.values(), *self._advancers]
        for pump in pumps:
            pump.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)

    def on_task_status(
        self, task_id: str, worker: str, status: Status, chain_id: str | None
    ) -> None:
        """Engine listener: runs in the event loop after every committed status change."""
        if chain_id is not None:
            if self._advancing.get(chain_id) == task_id:
                # The end of a task the chain starts its next step with, in the end's commit:
                # the tracked copy has it (and if that start fails, a pass follows).
                del self._advancing[chain_id]
                return
            self._changed_tasks.setdefault(chain_id, set()).add(task_id)
            # A running chain's plan changes only when a step's task ends: a task that was
            # queued or started is re-read with the next pass, but needs none of its own. (A
            # chain that is not tracked may be paused or canceled: every move of its tasks
            # counts there.)
            if status in FINISHED or chain_id not in self._tracked:
                self.kick(chain_id)

    def on_task_finishing(self, record: TaskRecord, outcome: Outcome) -> None:
        """Engine finishing listener: the end of ``record`` (a chain's task) is being written.
        When the tracked chain's plan with this end is to start one step whose id is chosen,
        start it in the end's own commit (see the module docstring)."""
        chain_id = record.chain_id
        if chain_id is None or self._stopping or self.engine.draining:
            return
        loaded = self._tracked.get(chain_id)
        if loaded is None or loaded.progress is None:
            return
        if self._changed_tasks.get(chain_id, set()) - {record.id}:
            return  # the tracked copy is behind on another task: a pass reads it
        view = loaded.by_task.get(record.id)
        if view is None or view.stage.index != loaded.progress.stage:
            return
        # The task as its end stores it (its result through JSON, as a pass would read it), laid
        # over the tracked copy: nothing of it changes until the start has committed.
        result = None if outcome.result is None else orjson.loads(orjson.dumps(outcome.result))
        ended = copy_task(record)
        ended.status, ended.finished_at = outcome.status, outcome.at
        ended.error, ended.result = outcome.error, result
        views = ChainMap({view.spec.name: StepView(view.spec, view.stage, view.record, ended)})
        views.maps.append(loaded.views)
        plan = decide(loaded.spec, loaded.stages, views, loaded.progress)
        if plan.done is not None or plan.skip or plan.rerun or len(plan.submit) != 1:
            return
        step = plan.submit[0]
        if step.record.task_id is None or step.record.state != "pending":
            return
        try:
            config = render(step.spec.config, Scope(loaded.chain, views, plan).lookup)
        except RefError:
            return  # a pass fails the step
        self._advancing[chain_id] = record.id
        start = functools.partial(self._start_with_end, loaded, plan, view, ended, step, config)
        task = asyncio.ensure_future(self._advance_with(loaded, ended, start))
        self._advancers.add(task)
        task.add_done_callback(self._advancers.discard)

    async def _advance_with(
        self, loaded: Loaded, ended: TaskRecord, start: Callable[[], Awaitable[bool]]
    ) -> None:
        """Start the next step (``start``: _start_with_end) in the commit of the end of
        ``ended``; on any failure the chain is read anew and planned by a pass."""
        chain_id = loaded.chain.id
        try:
            # Free unless a pass or an action has the chain: then the start waits, and commits
            # after the end rather than with it (an action may have changed what it starts).
            async with self._locked(chain_id):
                current = self._tracked.get(chain_id) is loaded and not self._stopping
                if current and await start():
                    return
        except Exception:  # NotWritten, a refused config, a full queue, a store error...
            log.debug("chain %s: starting a step with the end of %s failed", chain_id, ended.id)
        if self._advancing.get(chain_id) == ended.id:
            del self._advancing[chain_id]  # its end's event (if any) is an ordinary one
        self._forget(chain_id)
        self.kick(chain_id)

    async def _start_with_end(
        self,
        loaded: Loaded,
        plan: Plan,
        view: StepView,
        ended: TaskRecord,
        step: StepView,
        config: Any,
    ) -> bool:
        chain_id = loaded.chain.id
        following = self._following(loaded, plan)
        wanted = {v.spec.name: new_id() for v in following}
        advance = StepAdvance(
            chain_id,
            loaded.chain.restarts,
            ended.id,
            ended.attempt,
            ended.status,
            [_submitted(step.record)],
            list(wanted.items()),
        )
        claimed: list[str] = []

        async def write(task: TaskRecord, claim: Claim | None) -> TaskRecord | None:
            done = await self.store.advance(advance, task, claim)
            if done is None:
                return None
            claimed.extend(done[1])
            return done[0]

        spec = step.spec
        stored = await self.engine.submit(
            spec.worker,
            config,
            timeout=spec.timeout,
            retries=spec.retries,
            chain_id=chain_id,
            task_id=step.record.task_id,
            write=write,
        )
        # Committed: the tracked copy follows.
        view.task = ended
        step.record.state, step.record.error = "submitted", None
        step.task = copy_task(stored)
        for following_step in following:
            if following_step.spec.name in claimed:
                task_id = wanted[following_step.spec.name]
                following_step.record.task_id = task_id
                loaded.by_task[task_id] = following_step
        loaded.plan()  # its progress: the stage that runs now
        return len(claimed) == len(following)  # else another runner chose some first

    def kick(self, chain_id: str) -> None:
        """Have the chain re-planned soon; kicks that arrive meanwhile fold into one more pass."""
        if self._stopping:
            return
        self._dirty.add(chain_id)
        if chain_id not in self._pumps:
            self._pumps[chain_id] = asyncio.ensure_future(self._pump(chain_id))

    async def _pump(self, chain_id: str) -> None:
        try:
            while chain_id in self._dirty:
                self._dirty.discard(chain_id)
                async with self._locked(chain_id):
                    try:
                        await self._advance(chain_id)
                    except NotFound:
                        self._forget(chain_id)  # a task names a chain this store lacks
                    except Exception:
                        self._forget(chain_id)
                        self._retry_later(chain_id)
                    else:
                        self._backoff.pop(chain_id, None)
        finally:
            # No await between the loop's last check and this: a kick cannot fall in between.
            self._pumps.pop(chain_id, None)
            if chain_id not in self._tracked:
                self._changed_tasks.pop(chain_id, None)

    def _forget(self, chain_id: str) -> None:
        """Read the chain whole on its next pass (it changed in a way passes do not follow)."""
        self._tracked.pop(chain_id, None)

    def _retry_later(self, chain_id: str) -> None:
        """A pass failed (a store error, say): without a retry the chain would wait for its next
        task event, which may never come."""
        delay = min(self._backoff.get(chain_id, 0.5) * 2, 60.0)
        self._backoff[chain_id] = delay
        log.exception("advancing chain %s failed; trying again in %g s", chain_id, delay)
        self._kick_later(chain_id, delay)

    def _kick_later(self, chain_id: str, delay: float) -> None:
        def fire() -> None:
            self._timers.pop(chain_id, None)
            self.kick(chain_id)

        old = self._timers.pop(chain_id, None)
        if old is not None:
            old.cancel()
        self._timers[chain_id] = asyncio.get_running_loop().call_later(delay, fire)

    @contextlib.asynccontextmanager
    async def _locked(self, chain_id: str) -> AsyncIterator[None]:
        """One actor per chain at a time (its pump, or an API action); locks are dropped when
        nobody holds or waits for them."""
        entry = self._locks.get(chain_id)
        if entry is None:
            entry = self._locks[chain_id] = (asyncio.Lock(), [0])
        lock, users = entry
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                self._locks.pop(chain_id, None)

    # -- reading --------------------------------------------------------------------------------
    async def get(self, chain_id: str) -> ChainRecord:
        chain = await self.store.get(chain_id) if is_valid_id(chain_id) else None
        if chain is None:
            raise NotFound(f"no chain with id {shown(chain_id)}")
        return chain

    async def load(self, chain_id: str) -> Loaded:
        """The chain whole: its definition, every step and every step's task."""
        chain = await self.get(chain_id)
        parsed = self.parsed(chain)
        spec, stages = parsed.spec, parsed.stages
        records = {r.name: r for r in await self.store.steps(chain.id)}
        views: dict[str, StepView] = {}
        for stage in stages:
            for step in stage.steps:
                record = records[step.name]
                task = await self.engine.store.get(record.task_id) if record.task_id else None
                views[step.name] = StepView(step, stage, record, task)
        return Loaded(chain, spec, stages, views)

    def parsed(self, chain: ChainRecord) -> Parsed:
        """The chain's parsed definition (kept for the last few chains read)."""
        found = self._parsed.pop(chain.id, None)
        if found is None:
            spec = ChainSpec.model_validate(chain.spec)
            stages = stages_of(spec)
            places = {step.name: (step, stage) for stage in stages for step in stage.steps}
            found = Parsed(spec, stages, places)
            while len(self._parsed) >= _PARSED_KEPT:
                del self._parsed[next(iter(self._parsed))]  # the least recently read
        self._parsed[chain.id] = found
        return found

    async def steps_page(
        self, chain_id: str, *, cursor: int | None = None, limit: int = 100
    ) -> StepsPage:
        """``limit`` of the chain's steps after ``cursor`` with their tasks: what it costs does
        not grow with the chain."""
        chain = await self.get(chain_id)
        parsed = self.parsed(chain)
        records = await self.store.steps_page(chain.id, after=cursor, limit=limit + 1)
        more = len(records) > limit
        records = records[:limit]
        views = []
        for record in records:
            step, stage = parsed.places[record.name]
            task = await self.engine.store.get(record.task_id) if record.task_id else None
            views.append(StepView(step, stage, record, task))
        next_cursor = records[-1].position if more and records else None
        return StepsPage(chain, parsed, views, next_cursor)

    async def step_counts(self, chain_id: str) -> dict[str, int]:
        """How many of the chain's steps are in each status."""
        return await self.store.step_counts(chain_id)

    async def list_chains(
        self,
        *,
        status: Status | None = None,
        limit: int = 100,
        cursor: int | None = None,
        descending: bool = False,
    ) -> ChainPage:
        return await self.store.list_chains(
            status=status, limit=limit, cursor=cursor, descending=descending
        )

    # -- creating -------------------------------------------------------------------------------
    async def create(
        self,
        spec: ChainSpec,
        parameters: dict[str, Any],
        *,
        definition: str | None = None,
        chain_id: str | None = None,
    ) -> ChainRecord:
        """Store a checked chain (acknowledged = durable) and start advancing it. ``chain_id``:
        an id chosen beforehand (a callback is stored under it first)."""
        created = await self.create_with_key(
            spec, parameters, None, definition=definition, chain_id=chain_id
        )
        assert isinstance(created, ChainRecord)  # no key, so never an earlier request's record
        return created

    async def create_with_key(
        self,
        spec: ChainSpec,
        parameters: dict[str, Any],
        key: IdempotencyRecord | None,
        *,
        definition: str | None = None,
        chain_id: str | None = None,
    ) -> ChainRecord | IdempotencyRecord:
        """As :meth:`create`, unless the caller's ``key`` is taken: then nothing is created and
        the key's record is returned (``key.target_id`` is set to the new chain's id)."""
        self.engine.refuse_new_work()  # a new chain is new work: none while shutting down
        chain = ChainRecord(
            id=chain_id or new_id(),
            spec=spec.model_dump(mode="json"),
            parameters=parameters,
            status=Status.RUNNING,
            created_at=clock.now(),
            name=spec.name or definition,
            definition=definition,
        )
        steps = [
            StepRecord(chain.id, step.name, position)
            for position, step in enumerate(s for stage in stages_of(spec) for s in stage.steps)
        ]
        if key is None:
            await self.store.create(chain, steps)
        else:
            existing = await self.store.create_with_key(
                chain, steps, dataclasses.replace(key, target_id=chain.id)
            )
            if existing is not None:
                return existing
        self._publish(chain.id, Status.RUNNING, created=True)
        self.kick(chain.id)
        return chain

    # -- advancing ------------------------------------------------------------------------------
    async def _current(self, chain_id: str) -> Loaded:
        """The chain as it is now: its tracked copy brought up to date when it has one and it is
        still Running with the same restarts; else read whole (and tracked while Running)."""
        moved = self._changed_tasks.pop(chain_id, set())
        tracked = self._tracked.get(chain_id)
        if tracked is not None:
            state = await self.store.state(chain_id)
            if (
                state is not None
                and state.status is Status.RUNNING
                and state.restarts == tracked.chain.restarts
                and await self._refresh(tracked, moved)
            ):
                return tracked
            self._forget(chain_id)
        loaded = await self.load(chain_id)
        if loaded.chain.status is Status.RUNNING:
            self._tracked[chain_id] = loaded
        return loaded

    async def _refresh(self, tracked: Loaded, moved: set[str]) -> bool:
        """Re-read the tasks that moved; False when one is not a task of the stage that runs
        (a task of an ended stage re-run by hand, or a task another runner started)."""
        start = tracked.progress.stage if tracked.progress is not None else 0
        for task_id in moved:
            view = tracked.by_task.get(task_id)
            if view is None or view.stage.index < start:
                return False
            view.task = await self.engine.store.get(task_id)
        return True

    async def _advance(self, chain_id: str) -> None:
        rounds = 0
        while True:
            loaded = await self._current(chain_id)
            status = loaded.chain.status
            # A task of a canceled or paused chain that moved (it was being claimed while the
            # chain was stopped, or the server restarted) is stopped or held again.
            if status is Status.CANCELED:
                await self._stop_tasks(loaded.ordered())
            elif status is Status.PAUSED:
                await self._hold(loaded.ordered())
            if status is not Status.RUNNING:
                return  # nothing new starts
            plan = loaded.plan()
            now = clock.now()
            for view in plan.skip:
                view.record.state = "skipped"
                view.record.decided_at = now
                view.record.task_id = None  # an id chosen ahead: the step never ran
            if plan.done is not None:
                self._forget(chain_id)
                await self._finish(loaded, plan, [v.record for v in plan.skip])
                return
            await self.store.save_steps([v.record for v in plan.skip])
            settled = bool(plan.skip)
            if self.engine.draining:
                # Shutting down: no new step starts; the next start of the server picks the
                # chain up again (see start) and submits what is due then.
                return
            for view in plan.rerun:
                settled |= await self._rerun(view)
            if plan.submit:
                settled |= await self._submit(loaded, plan)
            if not settled:
                return
            rounds += 1
            # Each round settles a stage at least: more rounds than that is a bug, not a chain.
            if rounds > _MAX_ROUNDS + len(loaded.stages):
                log.warning("chain %s: still settling steps after %d passes", chain_id, rounds)
                return

    async def _submit(self, loaded: Loaded, plan: Plan) -> bool:
        """Start the plan's steps; returns whether any of them settled at once (as Failed), or
        the chain must be read anew (another runner claimed a step first)."""
        chain_id = loaded.chain.id
        scope = Scope(loaded.chain, loaded.views, plan)
        now = clock.now()
        ready: list[tuple[StepView, Any]] = []
        failed: list[StepRecord] = []
        for view in plan.submit:
            try:
                config = render(view.spec.config, scope.lookup)
            except RefError as exc:
                failed.append(_failed(view.record, f"a reference has no value: {exc}", now))
                continue
            ready.append((view, config))
        # Steps whose task id is not chosen yet (the first stage, or after a restart or a
        # skip): chosen and durable before any task exists (see the module docstring).
        lost = not await self._claim(loaded, [v for v, _ in ready if v.record.task_id is None])
        ready = [(v, c) for v, c in ready if v.record.task_id is not None]
        started = [v.record for v, _ in ready if v.record.state == "pending"]
        for record in started:
            record.state = "submitted"
            record.error = None
        # The steps are marked started and the next stage's ids chosen while the tasks are
        # created (the mark is queued first, so it commits with its task or before it).
        marks = asyncio.ensure_future(self.store.save_steps(started + failed))
        ahead = asyncio.ensure_future(self._claim(loaded, self._following(loaded, plan)))
        try:
            outcomes = await asyncio.gather(
                *(self._submit_one(chain_id, view, config) for view, config in ready)
            )
        finally:
            done = await asyncio.gather(marks, ahead, return_exceptions=True)
        for outcome in done:
            if isinstance(outcome, BaseException):
                raise outcome
        refused = [
            _failed(view.record, error, now)
            for (view, _), error in zip(ready, outcomes, strict=True)
            if error is not None
        ]
        await self.store.save_steps(refused)
        return bool(failed or refused or lost)

    async def _claim(self, loaded: Loaded, views: list[StepView]) -> bool:
        """Choose the task ids of ``views`` (steps with none); False when another runner had
        chosen some of them first (those are left without one here: the chain is read anew)."""
        if not views:
            return True
        wanted = {view.spec.name: new_id() for view in views}
        claimed = set(await self.store.claim_steps(loaded.chain.id, list(wanted.items())))
        for view in views:
            name = view.spec.name
            if name in claimed:
                view.record.task_id = wanted[name]
                loaded.by_task[wanted[name]] = view
        if len(claimed) < len(views):
            self._forget(loaded.chain.id)
            return False
        return True

    @staticmethod
    def _following(loaded: Loaded, plan: Plan) -> list[StepView]:
        """The steps of the stage after the one that runs now that have no task id yet."""
        if plan.stage + 1 >= len(loaded.stages):
            return []
        stage = loaded.stages[plan.stage + 1]
        views = [loaded.views[step.name] for step in stage.steps]
        return [v for v in views if v.record.state == "pending" and v.record.task_id is None]

    async def _submit_one(self, chain_id: str, view: StepView, config: Any) -> str | None:
        """Submit one step's task; the error text when it is refused."""
        spec = view.spec
        try:
            await self.engine.submit(
                spec.worker,
                config,
                timeout=spec.timeout,
                retries=spec.retries,
                chain_id=chain_id,
                task_id=view.record.task_id,
            )
        except ValidationError as exc:
            summary = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(config)'}: {e['msg']}"
                for e in exc.errors(include_url=False, include_context=False, include_input=False)
            )
            return f"invalid config for worker {spec.worker} (references filled in): {summary}"
        except (NotFound, WorkerDisabled) as exc:
            return str(exc)
        except QueueFull:
            # The step waits rather than failing its chain: it stays recorded with no task, which
            # the next pass submits again (as after a crash), once the worker's queue has room.
            self._wait_for_room(chain_id, view.spec.worker)
        except Draining:
            pass  # likewise recorded with no task: the next start of the server submits it
        except Exception:
            # A step recorded with no task is submitted by whichever runner gets to it: when
            # another did first, its task holds the id and there is nothing left to do.
            assert view.record.task_id is not None
            if await self.engine.store.get(view.record.task_id) is None:
                raise
        return None

    def _wait_for_room(self, chain_id: str, worker: str) -> None:
        # Nothing announces that a queue has room again: look once a second.
        delay = _ROOM_POLL_SECONDS
        log.info("chain %s: the queue of %s is full; trying again in %g s", chain_id, worker, delay)
        self._kick_later(chain_id, delay)

    async def _rerun(self, view: StepView) -> bool:
        """Run a restarted step's finished task again (its next attempt)."""
        assert view.task is not None
        try:
            await self.engine.rerun(view.task.id)
        except IllegalMove:
            return False  # it is active again already (re-run by hand): follow it
        except QueueFull:
            assert view.task.chain_id is not None
            self._wait_for_room(view.task.chain_id, view.task.worker)
            return False
        except Draining:
            return False  # the next start of the server re-runs it
        except (NotFound, Unsupported) as exc:
            await self.store.save_steps([_failed(view.record, str(exc), clock.now(), keep=True)])
            return True
        return False

    async def _finish(self, loaded: Loaded, plan: Plan, skipped: list[StepRecord]) -> None:
        status = plan.done
        assert status is not None
        error = failure_text(plan.fatal) if plan.fatal is not None else None
        result = None
        if status is Status.COMPLETED:
            try:
                result = self._result(loaded, plan)
            except RefError as exc:
                status, error = Status.FAILED, f"the chain's result: {exc}"
        changed = await self.store.finish_chain(
            loaded.chain.id, status, clock.now(), error=error, result=result, steps=skipped
        )
        if changed:
            self._publish(loaded.chain.id, status)

    def _result(self, loaded: Loaded, plan: Plan) -> Any:
        if loaded.spec.result is not None:
            return render(loaded.spec.result, Scope(loaded.chain, loaded.views, plan).lookup)
        if not plan.last_ran:
            return None
        if not plan.last_ran[0].stage.parallel:
            task = plan.last_ran[0].task
            return task.result if task is not None else None
        return {
            v.spec.name: v.task.result
            for v in plan.last_ran
            if v.status == "Completed" and v.task is not None
        }

    # -- control --------------------------------------------------------------------------------
    async def action(self, chain_id: str, action: str) -> ChainRecord:
        handlers = {
            "cancel": self.cancel,
            "pause": self.pause,
            "resume": self.resume,
            "restart": self.restart,
        }
        if action not in handlers:
            raise Unsupported(f"unknown action {action!r}; use one of {', '.join(handlers)}")
        return await handlers[action](chain_id)

    async def cancel(self, chain_id: str) -> ChainRecord:
        """The chain ends Canceled: its unfinished tasks are canceled, later steps never start."""
        async with self._locked(chain_id):
            loaded = await self._load_for(chain_id, "cancel")
            now = clock.now()
            never = []
            for view in loaded.ordered():
                if view.needs_submit or view.needs_rerun:
                    view.record.state = "canceled"
                    view.record.decided_at = now
                    if view.task is None:
                        view.record.task_id = None
                    never.append(view.record)
            changed = await self.store.cancel_chain(chain_id, now, "canceled", steps=never)
            await self._moved(chain_id, changed, Status.CANCELED, "cancel")
            await self._stop_tasks(loaded.ordered())
        return await self.get(chain_id)

    async def pause(self, chain_id: str) -> ChainRecord:
        """No new step starts; running steps pause where their worker can, queued ones wait."""
        async with self._locked(chain_id):
            loaded = await self._load_for(chain_id, "pause")
            changed = await self.store.pause_chain(chain_id)
            await self._moved(chain_id, changed, Status.PAUSED, "pause")
            await self._hold(loaded.ordered())
        return await self.get(chain_id)

    async def resume(self, chain_id: str) -> ChainRecord:
        async with self._locked(chain_id):
            loaded = await self._load_for(chain_id, "resume")
            changed = await self.store.resume_chain(chain_id)
            await self._moved(chain_id, changed, Status.RUNNING, "resume")
            paused = [
                v.task.id
                for v in loaded.ordered()
                if v.task is not None and v.task.status is Status.PAUSED
            ]
            for task_id in paused:
                await self._control(self.engine.resume, task_id, retry=False)
        self.kick(chain_id)
        return await self.get(chain_id)

    async def restart(self, chain_id: str) -> ChainRecord:
        """Run a Failed or Canceled chain again from its first unfinished stage.

        Steps that completed keep their results; the failed or canceled steps of that stage run
        their task again (next attempt); later steps start over.
        """
        self.engine.refuse_new_work()
        async with self._locked(chain_id):
            loaded = await self._load_for(chain_id, "restart")
            resets = _restart_steps(loaded)
            changed = await self.store.restart_chain(chain_id, steps=resets)
            await self._moved(chain_id, changed, Status.RUNNING, "restart")
        self.kick(chain_id)
        return await self.get(chain_id)

    async def _load_for(self, chain_id: str, action: str) -> Loaded:
        """The chain, read anew for ``action`` (under its lock), which its status must allow."""
        self._forget(chain_id)  # an action changes steps: the next pass reads them anew
        loaded = await self.load(chain_id)
        _require(loaded.chain, action)
        return loaded

    async def _moved(self, chain_id: str, changed: bool, new: Status, action: str) -> None:
        """Publish the chain's move to ``new``, or say (409) which status stopped it."""
        if not changed:
            raise ChainConflict((await self.get(chain_id)).status, action)
        self._publish(chain_id, new)

    async def _stop_tasks(self, views: list[StepView]) -> None:
        active = [v.task.id for v in views if v.task is not None and _active(v)]
        await asyncio.gather(*(self._control(self.engine.cancel, t) for t in active))

    async def _hold(self, views: list[StepView]) -> None:
        """Pause the chain's unfinished tasks (a worker that cannot pause keeps running)."""
        for view in views:
            if view.task is not None and view.task.status in (Status.QUEUED, Status.RUNNING):
                await self._control(self.engine.pause, view.task.id)

    async def _control(self, call: Any, task_id: str, *, retry: bool = True) -> None:
        """Cancel, pause or resume a task that may move meanwhile.

        A task being claimed is already Running in the store but not yet controllable in the
        engine, which refuses as if it were Running elsewhere: a moment later it can be (so
        ``retry``). A task that finished, is already there, or cannot do it is left alone.
        """
        for _ in range(_CONTROL_TRIES):
            try:
                await call(task_id)
                return
            except IllegalMove as exc:
                if not retry or exc.current is not Status.RUNNING:
                    return
                await asyncio.sleep(0.01)
            except (Unsupported, NotFound) as exc:
                log.debug("chain control of task %s skipped: %s", task_id, exc)
                return
        log.warning("could not %s task %s of a chain", getattr(call, "__name__", call), task_id)

    def add_listener(self, listener: Callable[[str, Status], None]) -> None:
        """Call ``listener(chain_id, status)`` after every committed chain status change (in the
        event loop; it must not block). Callbacks use it to learn that a chain finished."""
        self._listeners.append(listener)

    def _publish(self, chain_id: str, status: Status, *, created: bool = False) -> None:
        kind = "chain.created" if created else "chain.status"
        self.engine.events.publish(kind, chain=chain_id, status=status.value)
        for listener in self._listeners:
            try:
                listener(chain_id, status)
            except Exception:
                log.exception("a chain status listener failed")


def _require(chain: ChainRecord, action: str) -> None:
    if chain.status not in CHAIN_ACTION_SOURCES[action]:
        raise ChainConflict(chain.status, action)


def _active(view: StepView) -> bool:
    return view.task is not None and view.task.status in ACTIVE and not view.needs_rerun


def _failed(record: StepRecord, error: str, now: float, *, keep: bool = False) -> StepRecord:
    """The step could not start: Failed without a task (``keep``: its old task stays linked)."""
    record.state = "failed"
    record.error = error
    record.decided_at = now
    if not keep:
        record.task_id = None
    return record


def _submitted(record: StepRecord) -> StepRecord:
    """A copy of the step's record as starting it saves it."""
    saved = copy_step(record)
    saved.state, saved.error = "submitted", None
    return saved


def _restart_steps(loaded: Loaded) -> list[StepRecord]:
    start = next(
        (
            stage
            for stage in loaded.stages
            if any(loaded.views[s.name].status not in ("Completed", "Skipped") for s in stage.steps)
        ),
        None,
    )
    if start is None:
        return []
    resets = []
    for stage in loaded.stages[start.index :]:
        for step in stage.steps:
            view = loaded.views[step.name]
            record = view.record
            if stage is start and view.status == "Completed":
                continue  # done work stays done
            record.error = None
            record.decided_at = None
            if stage is start and view.task is not None:
                if view.task.status in FINISHED:
                    record.state = "rerun"
                    record.rerun_attempt = view.task.attempt + 1
                else:
                    record.state = "submitted"  # still running (it could not be stopped)
            else:
                if view.task is not None and record.task_id is not None:
                    record.history.append(record.task_id)
                record.state = "pending"
                record.task_id = None
                record.rerun_attempt = None
            resets.append(record)
    return resets
