"""Starting an attempt here: its config checked, its run started in the worker's mode, its
timeout armed. The task already holds a slot in the store (claimed, or submitted Running)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from pathlib import Path

from pydantic import BaseModel

from tasky import clock
from tasky.engine.announce import Announcer
from tasky.engine.background import Background
from tasky.engine.handle import Deadline, RunOutcome
from tasky.engine.lanes import Lane
from tasky.engine.modes import start_run
from tasky.engine.output import Output
from tasky.engine.runs import Runs
from tasky.net.addresses import OutboundPolicy
from tasky.states import Status
from tasky.store.records import TaskRecord
from tasky.workers.strict import summary, validate_configs

# What happens with an attempt's outcome (tasky.engine.outcomes.Outcomes.ended).
End = Callable[[Lane, TaskRecord, RunOutcome], None]


class Launcher:
    def __init__(
        self,
        runs: Runs,
        output: Output,
        announcer: Announcer,
        background: Background,
        pool: Executor,
        roots: tuple[Path, ...],
        outbound: OutboundPolicy,
        end: End,
    ) -> None:
        self._runs = runs
        self._output = output
        self._announcer = announcer
        self._background = background
        self._pool = pool
        self._roots = roots
        self._outbound = outbound
        self._end = end
        # Submit-acknowledged -> work-started intervals (monotonic seconds), newest last.
        self.dispatch_latencies: deque[float] = deque(maxlen=100_000)

    def launch_claimed(self, lane: Lane, records: Sequence[TaskRecord]) -> None:
        """Start the tasks a claim handed to this engine, in order. Their configs are checked
        together (see validate_configs: one pydantic call for the claim's tasks)."""
        models, invalid = validate_configs(lane.worker.Config, [r.config for r in records])
        running = Status.RUNNING.value
        self._announcer.statuses([(r, running) for i, r in enumerate(records) if i not in invalid])
        valid = iter(models)
        for index, record in enumerate(records):
            lane.slots.start(reserved=False)
            exc = invalid.get(index)
            if exc is not None:
                # The summary leaves out the input values: they may be secrets.
                failed = RunOutcome.failed(f"invalid config: {summary(exc)}")
                self._end(lane, record, failed)
                continue
            self._start(lane, record, next(valid), None)

    def launch_submitted(
        self, lane: Lane, record: TaskRecord, model: BaseModel, acked: float
    ) -> None:
        """Start a task its submit stored Running (its slot reserved for the submit)."""
        lane.slots.start(reserved=True)
        self._start(lane, record, model, acked)

    def _start(self, lane: Lane, record: TaskRecord, model: BaseModel, acked: float | None) -> None:
        handle = start_run(
            lane.worker,
            record,
            model,
            sink=self._output,
            pool=self._pool,
            roots=self._roots,
            outbound=self._outbound,
            on_done=lambda outcome: self._end(lane, record, outcome),
        )
        if acked is not None:
            # The work has started: the rest is bookkeeping that does not delay it.
            self.dispatch_latencies.append(clock.monotonic() - acked)
        if record.started_at is not None and record.queued_at is not None:
            lane.counters.queue_wait.observe(max(record.started_at - record.queued_at, 0.0))
        self._runs.add(handle)
        if record.timeout:
            reason = f"timed out after {record.timeout:g} s"
            handle.deadline = Deadline(record.timeout, lambda: handle.time_out(reason))
