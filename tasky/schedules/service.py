"""What the schedule routes and the scheduler loop do: check, store, and start runs.

A run goes through the engine's normal submit path (queue caps, events, and the audit of the
request that created the schedule apply) or, for a chain, through the chain runner. A due time is
claimed in the store before its run starts (a compare-and-set on ``next_run``), so it fires once
across restarts and across servers; a crash between the claim and the start loses that one run
rather than running it twice, unless the next start-up finds it soon enough to submit it under
the id recorded with the claim (a second insert of that id is refused, so it still runs once).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from tasky import clock
from tasky.chains.model import DefinitionError
from tasky.echo import shown
from tasky.engine import Engine
from tasky.engine.errors import NotFound
from tasky.ids import new_id
from tasky.schedules import timing
from tasky.schedules.model import ScheduleSpec
from tasky.schedules.records import to_record
from tasky.store.records import ScheduleRecord

log = logging.getLogger("tasky.schedules")

# A claimed run whose task is missing this soon after its claim was lost in a crash between the
# claim and the task's insert: it is submitted again under its recorded id at start-up. Older
# ones are left alone (retention may have deleted their task).
RECOVER_WITHIN = 120.0

# A due time seen later than this was missed (no server was running): its catch-up policy
# decides. A scheduler that merely woke a little late still runs it.
MISFIRE_GRACE = 5.0


class ScheduleExists(Exception):
    """A schedule of that name already exists (409)."""


class ScheduleReadOnly(Exception):
    """The schedule comes from the config file (409): change it there."""


class ScheduleService:
    """Schedules over the store; ``chains`` gives the chain service when chains are available."""

    def __init__(self, engine: Engine, chains: Callable[[], Any]) -> None:
        self.engine = engine
        self.store = engine.store
        self._chains = chains
        # Set when schedules change, so the loop re-reads at once instead of at its next poll.
        self.changed = asyncio.Event()

    # -- checks ---------------------------------------------------------------------------------
    async def check(self, spec: ScheduleSpec, source: str = "api") -> ScheduleRecord:
        """The record for ``spec``; TimingError, NotFound, DefinitionError or pydantic's
        ValidationError (the worker's config) when it cannot run."""
        record = to_record(spec, clock.now(), source)
        if spec.worker is not None:
            worker = self.engine.worker(spec.worker)  # NotFound
            record.worker = worker.name
            self.engine.validate(worker, spec.config)
        else:
            assert spec.chain is not None
            service = self._chains()
            if service is None:
                raise DefinitionError("chains are not available with this server's store")
            await service.definitions.prepare(spec.chain, spec.parameters)
        return record

    # -- changes --------------------------------------------------------------------------------
    async def create(self, spec: ScheduleSpec) -> ScheduleRecord:
        record = await self.check(spec)
        if not await self.store.create_schedule(record):
            raise ScheduleExists(f"a schedule named {shown(spec.name)} already exists")
        self.changed.set()
        return record

    async def get(self, name: str) -> ScheduleRecord:
        found = await self.store.get_schedule(name)
        if found is None:
            raise NotFound(f"no schedule named {shown(name)}")
        return found

    async def delete(self, name: str) -> None:
        record = await self.get(name)
        if record.source != "api":
            raise ScheduleReadOnly(
                f"schedule {shown(name)} comes from {record.source}; remove it there"
            )
        if not await self.store.delete_schedule(name):
            raise NotFound(f"no schedule named {shown(name)}")
        self.changed.set()

    async def set_paused(self, name: str, paused: bool) -> ScheduleRecord:
        record = await self.get(name)
        # A resumed schedule starts afresh from now: the paused time is not caught up.
        next_run = timing.next_due(record.cron, record.interval, record.timezone, None, clock.now())
        if not await self.store.set_schedule_paused(name, paused, next_run):
            raise NotFound(f"no schedule named {shown(name)}")
        self.changed.set()
        return await self.get(name)

    async def run_now(self, name: str) -> ScheduleRecord:
        """Start one run at once, outside the timetable (which stays as it is)."""
        record = await self.get(name)
        run_id = await self._start(record)
        await self.store.record_schedule_run(name, run_id, clock.now(), None)
        return await self.get(name)

    # -- firing ---------------------------------------------------------------------------------
    async def recover(self, now: float) -> int:
        """Submit the claimed worker runs whose task was never inserted (a crash in between);
        returns how many."""
        recovered = 0
        for record in await self.store.list_schedules():
            run_id = record.last_run_id
            if (
                record.worker is None
                or run_id is None
                or record.last_error is not None
                or record.last_run_at is None
                or now - record.last_run_at > RECOVER_WITHIN
                or await self.store.get(run_id) is not None
            ):
                continue
            try:
                await self.engine.submit(record.worker, record.config, task_id=run_id)
            except Exception as exc:  # refused now (or inserted meanwhile by another server)
                log.warning("schedule %s: the interrupted run did not start: %s", record.name, exc)
                continue
            log.info("schedule %s: started run %s, interrupted by a crash", record.name, run_id)
            recovered += 1
        return recovered

    async def fire_due(self, record: ScheduleRecord, now: float) -> bool:
        """Claim the due time ``record.next_run`` and start its run; False when another claim
        won it (or the schedule changed meanwhile)."""
        due = record.next_run
        next_run = timing.next_due(record.cron, record.interval, record.timezone, due, now)
        if now - due > MISFIRE_GRACE and record.catch_up == "skip":
            skipped = await self.store.claim_schedule_run(record.name, due, next_run, None, now)
            if skipped:
                log.info("schedule %s: skipped the run missed at %.0f", record.name, due)
            return skipped
        # A worker's task id is chosen before the claim, so the claim records it atomically.
        run_id = new_id() if record.worker is not None else None
        if not await self.store.claim_schedule_run(record.name, due, next_run, run_id, now):
            return False
        try:
            started = await self._start(record, run_id)
        except Exception as exc:  # the schedule lives on; the reason is shown with it
            log.warning("schedule %s: the run could not start: %s", record.name, exc)
            await self.store.record_schedule_run(record.name, None, now, _reason(exc))
            return True
        if run_id is None:
            await self.store.record_schedule_run(record.name, started, now, None)
        return True

    async def _start(self, record: ScheduleRecord, task_id: str | None = None) -> str:
        if record.worker is not None:
            task = await self.engine.submit(record.worker, record.config, task_id=task_id)
            return task.id
        service = self._chains()
        if service is None:
            raise DefinitionError("chains are not available with this server's store")
        assert record.chain is not None
        spec, values = await service.definitions.prepare(record.chain, record.config)
        chain = await service.runner.create(spec, values, definition=record.chain)
        chain_id: str = chain.id
        return chain_id


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text[:500]
