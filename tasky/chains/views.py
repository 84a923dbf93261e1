"""How chains look on the wire (field names in the style of the seed: ChainId, Status, ...)."""

from __future__ import annotations

from typing import Any

from tasky import clock
from tasky.api.views import output_of
from tasky.chains.model import ChainSpec
from tasky.chains.plan import StepView
from tasky.chains.runner import Loaded, StepsPage
from tasky.chains.secrets import masked_parameters, masked_spec, secret_parameters
from tasky.redact import redact_url
from tasky.states import FINISHED
from tasky.store.chain_records import ChainRecord, DefinitionRecord
from tasky.workers.registry import WorkerRegistry


def chain_summary(chain: ChainRecord) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ChainId": chain.id,
        "Name": chain.name,
        "Definition": chain.definition,
        "Status": chain.status.value,
        "CreatedAt": chain.created_at,
        "FinishedAt": chain.finished_at,
        "Restarts": chain.restarts,
        "Error": chain.error,
    }
    if chain.status in FINISHED and chain.finished_at is not None:
        seconds = max(chain.finished_at - chain.created_at, 0.0)
        out["Duration"] = clock.go_duration(seconds)
        out["DurationSeconds"] = seconds
    return out


# Steps a chain's own answer holds (all of a chain up to this long); the rest come in pages.
DETAIL_STEPS = 1000


def chain_detail(loaded: Loaded, registry: WorkerRegistry) -> dict[str, Any]:
    """A chain read whole, shown as :func:`chain_page_detail` shows it (what callbacks send)."""
    ordered = loaded.ordered()
    counts: dict[str, int] = {}
    for view in ordered:
        counts[view.status] = counts.get(view.status, 0) + 1
    shown = ordered[:DETAIL_STEPS]
    more = len(ordered) > DETAIL_STEPS
    next_cursor = shown[-1].record.position if more else None
    return _detail(loaded.chain, loaded.spec, shown, counts, next_cursor, registry)


def chain_page_detail(
    page: StepsPage, counts: dict[str, int], registry: WorkerRegistry
) -> dict[str, Any]:
    """A chain with its first page of steps (every step, for a chain no longer than
    :data:`DETAIL_STEPS`) and how many steps are in each status."""
    return _detail(page.chain, page.parsed.spec, page.views, counts, page.next_cursor, registry)


def _detail(
    chain: ChainRecord,
    spec: ChainSpec,
    shown: list[StepView],
    counts: dict[str, int],
    next_cursor: int | None,
    registry: WorkerRegistry,
) -> dict[str, Any]:
    out = chain_summary(chain)
    secret = secret_parameters(chain.spec, registry)
    out["Parameters"] = masked_parameters(chain.parameters, secret)
    out["OnFailure"] = spec.on_failure
    out["Result"] = chain.result
    out["Steps"] = [step_view(v) for v in shown]
    out["StepCount"] = sum(counts.values())
    out["StepCounts"] = counts
    out["StepsNextCursor"] = cursor_text(next_cursor)
    return out


def steps_page(page: StepsPage) -> dict[str, Any]:
    return {
        "Steps": [step_view(v) for v in page.views],
        "NextCursor": cursor_text(page.next_cursor),
    }


def cursor_text(cursor: int | None) -> str | None:
    return None if cursor is None else str(cursor)


def step_view(view: StepView) -> dict[str, Any]:
    task = view.task if view.record.state in ("pending", "submitted", "rerun") else None
    out: dict[str, Any] = {
        "Name": view.spec.name,
        "Stage": view.stage.index,
        "Group": view.stage.name if view.stage.parallel else None,
        "Worker": view.spec.worker,
        "When": view.stage.when,
        "Status": view.status,
        "TaskId": view.record.task_id if view.task is not None else None,
        "Attempt": task.attempt if task is not None else None,
        "QueuedAt": task.queued_at if task is not None else None,
        "StartedAt": task.started_at if task is not None else None,
        # Time the step's task spent Paused, and when its current pause began (run time
        # leaves them out; the page ticks it from these).
        "PausedSeconds": task.paused_seconds if task is not None else 0.0,
        "PausedAt": task.paused_at if task is not None else None,
        "FinishedAt": task.finished_at if task is not None else view.record.decided_at,
        "Duration": None,
        "DurationSeconds": None,
        "Error": view.error,
        # Always an object, as a task's: {} until the step has Completed.
        "Output": output_of(
            task.result if task is not None and view.status == "Completed" else None
        ),
        "PreviousTaskIds": list(view.record.history),
    }
    seconds = task.run_seconds(clock.now()) if task is not None else None
    if task is not None and task.finished_at is not None and seconds is not None:
        # Running time only: a step's time spent Paused is left out.
        out["Duration"] = clock.go_duration(seconds)
        out["DurationSeconds"] = seconds
    return out


def definition_view(
    record: DefinitionRecord, registry: WorkerRegistry, *, full: bool = True
) -> dict[str, Any]:
    spec = masked_spec(record.spec, registry)
    if spec.get("callback"):
        spec["callback"] = redact_url(spec["callback"])
    out: dict[str, Any] = {
        "Name": record.name,
        "Source": record.source,
        "Description": spec.get("description") or "",
        "Parameters": spec.get("parameters") or {},
        "CreatedAt": record.created_at,
        "UpdatedAt": record.updated_at,
    }
    if full:
        out["Definition"] = spec
    return out
