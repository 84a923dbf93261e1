"""How records look on the wire. Field names follow the seed (TaskId, Status, Duration, Output)."""

from __future__ import annotations

from typing import Any

from tasky import clock
from tasky.states import FINISHED, Status
from tasky.store.histogram import edge_seconds, percentile
from tasky.store.records import AttemptRecord, NodeRecord, TaskRecord, WorkerStats
from tasky.workers.base import Worker
from tasky.workers.secrets import public_config


def output_of(result: Any) -> dict[str, Any]:
    """``Output`` on the wire: always an object, ``{}`` when there is none (not Completed)."""
    return result if isinstance(result, dict) else {}


def _duration_seconds(record: TaskRecord) -> float | None:
    """Running time of the current (or last) attempt: time spent Paused is left out."""
    return record.run_seconds(clock.now())


def _pause_fields(record: TaskRecord) -> dict[str, Any]:
    """What the page needs to tick a run time that stands still while Paused: running time is
    (PausedAt, or FinishedAt, or now) - StartedAt - PausedSeconds."""
    return {"PausedSeconds": record.paused_seconds, "PausedAt": record.paused_at}


def task_summary(record: TaskRecord, queue_position: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "TaskId": record.id,
        "Status": record.status.value,
        "Worker": record.worker,
        "CreatedAt": record.created_at,
        # The page ticks the duration of running tasks and tells a paused-in-queue task apart.
        "StartedAt": record.started_at,
        "FinishedAt": record.finished_at,
        **_pause_fields(record),
        # A Queued task's place in its worker's queue (1: the next to start); null otherwise.
        "QueuePosition": queue_position,
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
    if record.node is not None:
        out["Node"] = record.node
    if record.target is not None:
        out["Target"] = record.target
    return out


def node_view(node: NodeRecord, alive: bool) -> dict[str, Any]:
    return {
        "Name": node.name,
        "Labels": node.labels,
        "Workers": node.workers,
        "RunningTasks": node.running,
        "LastHeartbeat": node.heartbeat_at,
        "Alive": alive,
        "StartedAt": node.started_at,
        "StoppedAt": node.stopped_at,
    }


def shown_config(record: TaskRecord, worker: Worker | None) -> Any:
    """The task's config with its secrets masked (every value, if the worker is unknown here)."""
    return public_config(worker.Config if worker is not None else None, record.config)


def task_detail(
    record: TaskRecord,
    attempts: list[AttemptRecord],
    worker: Worker | None,
    queue_position: int | None = None,
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
        **_pause_fields(record),
        "Attempt": record.attempt,
        "Attempts": [attempt_view(a) for a in every_attempt(record, attempts)],
        "Retries": record.retries,
        "Timeout": record.timeout,
        "Progress": record.progress,
        "ProgressMessage": record.progress_message,
        "Output": output_of(record.result),
        "Error": record.error,
        "ChainId": record.chain_id,
        "LogsDropped": record.logs_dropped,
        "Node": record.node,
        "Target": record.target,
        "QueuePosition": queue_position,
    }


def every_attempt(record: TaskRecord, ended: list[AttemptRecord]) -> list[AttemptRecord]:
    """The attempts that ended, and the current one while it runs (or is paused mid-run).

    The store records an attempt once it ends; the one under way is read from the task itself
    (a re-queued task has no start time until its next attempt starts).
    """
    current_ended = any(a.attempt == record.attempt for a in ended)
    if record.started_at is None or record.status in FINISHED or current_ended:
        return ended
    current = AttemptRecord(
        attempt=record.attempt,
        status=record.status,
        started_at=record.started_at,
        finished_at=None,
        error=None,
        node=record.node,
        paused_seconds=record.paused_seconds,
    )
    return [*ended, current]


def attempt_view(attempt: AttemptRecord) -> dict[str, Any]:
    return {
        "Attempt": attempt.attempt,
        "Status": attempt.status.value,
        "StartedAt": attempt.started_at,
        "FinishedAt": attempt.finished_at,
        # Time between StartedAt and FinishedAt spent Paused (not running time).
        "PausedSeconds": attempt.paused_seconds,
        "Error": attempt.error,
        "Output": output_of(attempt.result),
        # Where a Python worker's failure came from (capped at 16 KiB, keeping the end).
        "Traceback": attempt.traceback,
        "Node": attempt.node,
    }


def task_status(record: TaskRecord) -> dict[str, Any]:
    out: dict[str, Any] = {"TaskId": record.id, "Status": record.status.value}
    if record.progress is not None:
        out["Progress"] = record.progress
        out["ProgressMessage"] = record.progress_message
    if record.error is not None:
        out["Error"] = record.error
    return out


def _attempt_seconds(attempt: AttemptRecord, record: TaskRecord) -> float | None:
    """An attempt's running time; the one under way is the task's own (it may be Paused)."""
    if attempt.finished_at is None and attempt.attempt == record.attempt:
        return _duration_seconds(record)
    return attempt.run_seconds


def task_statistics(record: TaskRecord, ended: list[AttemptRecord]) -> dict[str, Any]:
    wait = None
    if record.started_at is not None and record.queued_at is not None:
        wait = max(record.started_at - record.queued_at, 0.0)
    run_time = _duration_seconds(record)
    attempts = every_attempt(record, ended)
    timed = [(a, _attempt_seconds(a, record)) for a in attempts]
    return {
        "TaskId": record.id,
        "Worker": record.worker,
        "Status": record.status.value,
        "Attempt": record.attempt,
        # The same list as the record's Attempts, with each attempt's timing only.
        "Attempts": [
            {
                "Attempt": a.attempt,
                "Status": a.status.value,
                "StartedAt": a.started_at,
                "FinishedAt": a.finished_at,
                "PausedSeconds": a.paused_seconds,
                "RunTimeSeconds": seconds,
            }
            for a, seconds in timed
        ],
        "CreatedAt": record.created_at,
        "QueuedAt": record.queued_at,
        "StartedAt": record.started_at,
        "FinishedAt": record.finished_at,
        "QueueWaitSeconds": wait,
        "RunTimeSeconds": run_time,
        "Duration": clock.go_duration(run_time) if run_time is not None else None,
        "TotalRunTimeSeconds": sum(seconds for _, seconds in timed if seconds is not None),
    }


def takes_config(worker: Worker) -> bool:
    """Whether the worker reads any config: fields, or extra keys it accepts."""
    schema = worker.Config.model_json_schema()
    return bool(schema.get("properties")) or schema.get("additionalProperties", True) is not False


def worker_view(worker: Worker, *, detailed: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"name": worker.name, "description": worker.description}
    # Absent for a worker that takes no config, as the seed's Ifconfig: the list and /info agree.
    if takes_config(worker):
        out["config_objects"] = worker.Config.model_json_schema()
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


def _bounds(bucket: int) -> tuple[float, float]:
    """A bucket's [from, to) in seconds, as bucket_of counts runs into it (computed once per
    bound: pollers read statistics many times a second)."""
    return edge_seconds(bucket), edge_seconds(bucket + 1)


def histogram_view(hist: dict[int, int]) -> list[dict[str, Any]]:
    """Run-time histogram buckets as [FromSeconds, ToSeconds) with their count, shortest first."""
    view: list[dict[str, Any]] = []
    for bucket, count in sorted(hist.items()):
        if count:
            low, high = _bounds(bucket)
            view.append({"FromSeconds": low, "ToSeconds": high, "Count": count})
    return view


def _percentiles(stats: WorkerStats, average: float | None) -> dict[str, float | None]:
    filled = [b for b, n in stats.run_time_hist.items() if n]
    if len(filled) == 1 and average is not None:
        # Every run fell in one bucket: the average lies in it too and is exact for one run,
        # where the bucket's middle could be 5 % off.
        return {"p50": average, "p90": average, "p99": average}
    return {
        name: percentile(stats.run_time_hist, q)
        for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))
    }


def worker_statistics(stats: WorkerStats, running_here: int, queued_here: int) -> dict[str, Any]:
    by_status = {s.value: stats.by_status.get(s.value, 0) for s in Status}
    completed = by_status[Status.COMPLETED.value]
    failed = by_status[Status.FAILED.value]
    ended = completed + failed
    average = (stats.run_time_sum / stats.finished) if stats.finished else None
    return {
        "Worker": stats.worker,
        # Runs, not tasks: every attempt that ended counts (re-runs and retries too), so a task
        # run twice counts twice here and once in Total (documented in docs/api.md).
        "TasksPerformed": stats.finished,
        "ByStatus": by_status,
        "Total": sum(by_status.values()),
        "FailureRate": (failed / ended) if ended else None,
        "AverageRunTimeSeconds": average,
        "RunTimePercentilesSeconds": _percentiles(stats, average),
        "RunTimeHistogram": histogram_view(stats.run_time_hist),
        "AverageQueueWaitSeconds": (stats.wait_sum / stats.wait_count)
        if stats.wait_count
        else None,
        "RunningNow": running_here,
        "QueuedNow": queued_here,
    }
