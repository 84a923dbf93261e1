"""Deciding what a chain does next, from where its steps are now. Pure: no I/O.

The runner calls :func:`decide` after every change and applies the answer, so the same code
advances a chain in normal running, after a restart action and after a server crash.

Rules: stages run in order. A stage starts when every step of the stage before it has finished.
Its ``when`` is checked against whether the chain is *failing*: a step failed (or was canceled
on its own) and its ``on_failure`` policy is ``stop``. ``success`` runs when it is not failing,
``failure`` when it is, ``always`` in both cases. A stage whose rule says no is skipped. At the
end the chain is Failed if it is failing, else Completed.

A long chain is not re-planned from its first stage at every step: a :class:`Progress` carries
what the stages that already ended add up to (their failures, the last one that ran), and
:func:`decide` starts from there. Stages that ended stay ended (a restart or a task re-run by hand
makes the runner plan from the first stage again).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from tasky.chains.model import ChainSpec, StageInfo, StepSpec, When, step_policy
from tasky.states import Status
from tasky.store.chain_records import StepRecord, step_status
from tasky.store.records import TaskRecord

PENDING = "Pending"
SKIPPED = "Skipped"
TERMINAL = frozenset({"Completed", "Failed", "Canceled", SKIPPED})


@dataclass(slots=True)
class StepView:
    """A step as the chain sees it now: definition, stored state and its task (if any)."""

    spec: StepSpec
    stage: StageInfo
    record: StepRecord
    task: TaskRecord | None

    @property
    def needs_rerun(self) -> bool:
        """A restart asked for its task to run again and that has not happened yet."""
        return (
            self.record.state == "rerun"
            and self.task is not None
            and self.task.attempt < (self.record.rerun_attempt or 0)
        )

    @property
    def needs_submit(self) -> bool:
        """Pending, or recorded with a task id whose task was never created (a crash). (A
        pending step whose task exists was started, and not marked so yet.)"""
        state = self.record.state
        return state in ("pending", "submitted", "rerun") and self.task is None

    @property
    def status(self) -> str:
        task = self.task
        return step_status(
            self.record.state,
            self.record.rerun_attempt,
            None if task is None else task.status.value,
            None if task is None else task.attempt,
        )

    @property
    def error(self) -> str | None:
        if self.task is not None and self.record.state in ("pending", "submitted", "rerun"):
            return self.task.error
        return self.record.error

    @property
    def begun(self) -> bool:
        return self.record.state != "pending" or self.task is not None


@dataclass(slots=True)
class Progress:
    """The stages before ``stage`` have ended; what they add up to (as in :class:`Plan`)."""

    stage: int = 0
    failures: list[StepView] = field(default_factory=list)
    fatal: StepView | None = None
    last_ran: list[StepView] = field(default_factory=list)


@dataclass(slots=True)
class Plan:
    skip: list[StepView] = field(default_factory=list)
    submit: list[StepView] = field(default_factory=list)
    rerun: list[StepView] = field(default_factory=list)
    # Set when every stage has finished: Completed or Failed.
    done: Status | None = None
    # Failed or canceled steps so far, in order; ``fatal`` is the first that stops the chain.
    failures: list[StepView] = field(default_factory=list)
    fatal: StepView | None = None
    # The steps of the last stage that ran (the default result of a completed chain).
    last_ran: list[StepView] = field(default_factory=list)
    # The stage that runs now (len(stages) when done) and the stages before it that ended (or
    # are skipped by this plan): where the next plan may start.
    stage: int = 0

    def progress(self) -> Progress:
        return Progress(self.stage, list(self.failures), self.fatal, list(self.last_ran))


def runs(when: When, failing: bool) -> bool:
    if when == "always":
        return True
    return failing if when == "failure" else not failing


def decide(
    spec: ChainSpec,
    stages: list[StageInfo],
    views: Mapping[str, StepView],
    progress: Progress | None = None,
) -> Plan:
    """What to do next; ``progress``: from where (None: from the first stage)."""
    start = progress or Progress()
    plan = Plan(
        failures=list(start.failures),
        fatal=start.fatal,
        last_ran=list(start.last_ran),
        stage=start.stage,
    )
    # By index, not a slice: a slice copies every stage after the one that runs now, on every
    # step, which made a step of a long chain cost more than one of a short chain.
    for index in range(start.stage, len(stages)):
        stage = stages[index]
        members = [views[step.name] for step in stage.steps]
        if all(v.status in TERMINAL for v in members):
            _account(spec, members, plan)
            plan.stage = stage.index + 1
            continue
        if not any(v.begun for v in members) and not runs(stage.when, plan.fatal is not None):
            plan.skip.extend(members)
            plan.stage = stage.index + 1
            continue
        # The stage runs (or is running): start what has not started; then wait for all of it.
        plan.submit = [v for v in members if v.needs_submit]
        plan.rerun = [v for v in members if v.needs_rerun]
        return plan
    plan.done = Status.FAILED if plan.fatal is not None else Status.COMPLETED
    return plan


def _account(spec: ChainSpec, members: list[StepView], plan: Plan) -> None:
    if any(v.status != SKIPPED for v in members):
        plan.last_ran = members
    for view in members:
        if view.status in ("Failed", "Canceled"):
            plan.failures.append(view)
            if plan.fatal is None and step_policy(spec, view.spec) == "stop":
                plan.fatal = view
