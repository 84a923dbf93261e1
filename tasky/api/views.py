"""How records look on the wire. Field names follow the seed (TaskId, Status, Duration, Output)."""

from __future__ import annotations

from typing import Any

from tasky import clock
from tasky.states import FINISHED, Status
from tasky.store.histogram import percentile
from tasky.store.records import AttemptRecord, TaskRecord, WorkerStats
from tasky.workers.base import Worker
from tasky.workers.secrets import public_config


def _duration_seconds(record: TaskRecord) -> float | None:
    if record.started_at is None:
        return None
    end = record.finished_at if record.finished_at is not None else clock.now()
    return max(end - record.started_at, 0.0)


def task_summary(record: TaskRecord) -> dict[str, Any]:
    out: dict[str, Any] = {
        "TaskId": record.id,
        "Status": record.status.value,
        "Worker": record.worker,
        "CreatedAt": record.created_at,
        # The page ticks the duration of running tasks and tells a paused-in-queue task apart.
        "StartedAt": record.started_at,
        "FinishedAt": record.finished_at,
    }
    if record.status in FINISHED and record.started_at is not None:
        seconds = _duration_seconds(record)
        if seconds is not None:
            out["Duration"] = clock.go_duration(seconds)
            out["DurationSeconds"] = seconds
    if record.progress is not None:
        out["Progress"] = record.progress
    if record.chain_id is not None:
        out["ChainId"] = record.chain_id
    return out


def shown_config(record: TaskRecord, worker: Worker | None) -> Any:
    """The task's config with its secrets masked (every value, if the worker is unknown here)."""
    return public_config(worker.Config if worker is not None else None, record.config)


def task_detail(
    record: TaskRecord, attempts: list[AttemptRecord], worker: Worker | None
) -> dict[str, Any]:
    seconds = _duration_seconds(record)
    return {
        "TaskId": record.id,
        "Worker": record.worker,
        "Status": record.status.value,
        "Config": shown_config(record, worker),
        "CreatedAt": record.created_at,
        "QueuedAt": record.queued_at,
        "StartedAt": record.started_at,
        "FinishedAt": record.finished_at,
        "Duration": clock.go_duration(seconds) if seconds is not None else None,
        "DurationSeconds": seconds,
        "Attempt": record.attempt,
        "Attempts": [attempt_view(a) for a in attempts],
        "Retries": record.retries,
        "Timeout": record.timeout,
        "Progress": record.progress,
        "ProgressMessage": record.progress_message,
        "Output": record.result,
        "Error": record.error,
        "ChainId": record.chain_id,
        "LogsDropped": record.logs_dropped,
    }


def attempt_view(attempt: AttemptRecord) -> dict[str, Any]:
    return {
        "Attempt": attempt.attempt,
        "Status": attempt.status.value,
        "StartedAt": attempt.started_at,
        "FinishedAt": attempt.finished_at,
        "Error": attempt.error,
        "Output": attempt.result,
        # Where a Python worker's failure came from (capped at 16 KiB, keeping the end).
        "Traceback": attempt.traceback,
    }


def task_status(record: TaskRecord) -> dict[str, Any]:
    out: dict[str, Any] = {"TaskId": record.id, "Status": record.status.value}
    if record.progress is not None:
        out["Progress"] = record.progress
        out["ProgressMessage"] = record.progress_message
    if record.error is not None:
        out["Error"] = record.error
    return out


def task_statistics(record: TaskRecord, attempts: list[AttemptRecord]) -> dict[str, Any]:
    wait = None
    if record.started_at is not None and record.queued_at is not None:
        wait = max(record.started_at - record.queued_at, 0.0)
    run_time = _duration_seconds(record)
    return {
        "TaskId": record.id,
        "Worker": record.worker,
        "Status": record.status.value,
        "Attempt": record.attempt,
        "Attempts": max(record.attempt, len(attempts)),
        "CreatedAt": record.created_at,
        "QueuedAt": record.queued_at,
        "StartedAt": record.started_at,
        "FinishedAt": record.finished_at,
        "QueueWaitSeconds": wait,
        "RunTimeSeconds": run_time,
        "Duration": clock.go_duration(run_time) if run_time is not None else None,
        "TotalRunTimeSeconds": sum(
            (a.finished_at - a.started_at)
            for a in attempts
            if a.started_at is not None and a.finished_at is not None
        ),
    }


def worker_view(worker: Worker, *, detailed: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"name": worker.name, "description": worker.description}
    schema = worker.Config.model_json_schema()
    if schema.get("properties") or detailed:
        out["config_objects"] = schema
    out["max_tasks"] = worker.max_tasks
    out["mode"] = worker.execution_mode()
    out["actions"] = sorted(a for a in ("cancel", "pause", "resume") if worker.supports(a))
    out["enabled"] = worker.enabled
    if detailed:
        out["usage"] = worker.usage
        out["idempotent"] = worker.idempotent
        out["timeout"] = worker.timeout
        out["retries"] = worker.retries
    return out


def worker_statistics(stats: WorkerStats, running_here: int, queued_here: int) -> dict[str, Any]:
    by_status = {s.value: stats.by_status.get(s.value, 0) for s in Status}
    completed = by_status[Status.COMPLETED.value]
    failed = by_status[Status.FAILED.value]
    ended = completed + failed
    return {
        "Worker": stats.worker,
        "TasksPerformed": stats.finished,
        "ByStatus": by_status,
        "Total": sum(by_status.values()),
        "FailureRate": (failed / ended) if ended else None,
        "AverageRunTimeSeconds": (stats.run_time_sum / stats.finished) if stats.finished else None,
        "RunTimePercentilesSeconds": {
            name: percentile(stats.run_time_hist, q)
            for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))
        },
        "RunTimeHistogram": {str(k): v for k, v in sorted(stats.run_time_hist.items())},
        "AverageQueueWaitSeconds": (stats.wait_sum / stats.wait_count)
        if stats.wait_count
        else None,
        "RunningNow": running_here,
        "QueuedNow": queued_here,
    }
