"""How chains look on the wire (field names in the style of the seed: ChainId, Status, ...)."""

from __future__ import annotations

from typing import Any

from tasky import clock
from tasky.api.views import output_of
from tasky.chains.plan import StepView
from tasky.chains.runner import Loaded
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


def chain_detail(loaded: Loaded, registry: WorkerRegistry) -> dict[str, Any]:
    out = chain_summary(loaded.chain)
    secret = secret_parameters(loaded.spec.model_dump(mode="json"), registry)
    out["Parameters"] = masked_parameters(loaded.chain.parameters, secret)
    out["OnFailure"] = loaded.spec.on_failure
    out["Result"] = loaded.chain.result
    out["Steps"] = [step_view(v) for v in loaded.ordered()]
    return out


def step_view(view: StepView) -> dict[str, Any]:
    task = view.task if view.record.state in ("submitted", "rerun") else None
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
