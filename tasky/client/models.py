"""What the client returns: the server's JSON shapes as typed, read-only objects.

Attributes are snake_case; the wire names (``TaskId``, ``Status``, ...) are their aliases, and
fields the server adds later are kept (``extra="allow"``), so
``model.model_dump(mode="json", by_alias=True, exclude_unset=True)`` gives back what the server
sent. That is what ``tasky ... --json`` prints.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tasky.states import FINISHED, Status


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    def wire(self) -> dict[str, Any]:
        """The object as the server sent it (wire names, unknown fields kept)."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


class WorkerInfo(_Wire):
    name: str
    description: str = ""
    config_schema: dict[str, Any] = Field(default_factory=dict, alias="config_objects")
    max_tasks: int | None = None
    mode: str | None = None
    actions: list[str] = Field(default_factory=list)
    enabled: bool = True
    usage: str | None = None
    idempotent: bool | None = None
    timeout: float | None = None
    retries: int | None = None


class NodeInfo(_Wire):
    """A node sharing the server's store (``GET /tasky/v1/nodes``)."""

    name: str = Field(alias="Name")
    labels: list[str] = Field(default_factory=list, alias="Labels")
    workers: list[str] = Field(default_factory=list, alias="Workers")
    running_tasks: int = Field(default=0, alias="RunningTasks")
    last_heartbeat: float = Field(alias="LastHeartbeat")
    alive: bool = Field(alias="Alive")
    started_at: float = Field(alias="StartedAt")
    stopped_at: float | None = Field(default=None, alias="StoppedAt")


class TaskStatus(_Wire):
    task_id: str = Field(alias="TaskId")
    status: Status = Field(alias="Status")
    progress: float | None = Field(default=None, alias="Progress")
    progress_message: str | None = Field(default=None, alias="ProgressMessage")
    error: str | None = Field(default=None, alias="Error")
    # A Queued task's place in its worker's queue (1: next to start); None otherwise.
    queue_position: int | None = Field(default=None, alias="QueuePosition")

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


class TaskSummary(_Wire):
    task_id: str = Field(alias="TaskId")
    status: Status = Field(alias="Status")
    worker: str = Field(alias="Worker")
    created_at: float = Field(alias="CreatedAt")
    duration: str | None = Field(default=None, alias="Duration")
    duration_seconds: float | None = Field(default=None, alias="DurationSeconds")
    progress: float | None = Field(default=None, alias="Progress")
    chain_id: str | None = Field(default=None, alias="ChainId")
    node: str | None = Field(default=None, alias="Node")
    target: str | None = Field(default=None, alias="Target")
    # Run time leaves time spent Paused out (see docs/api.md).
    paused_seconds: float = Field(default=0.0, alias="PausedSeconds")
    paused_at: float | None = Field(default=None, alias="PausedAt")
    queue_position: int | None = Field(default=None, alias="QueuePosition")


class TaskPage(_Wire):
    tasks: list[TaskSummary] = Field(alias="Tasks")
    next_cursor: str | None = Field(default=None, alias="NextCursor")


class Task(_Wire):
    """The whole task record (``GET /tasks/{id}``)."""

    task_id: str = Field(alias="TaskId")
    worker: str = Field(alias="Worker")
    status: Status = Field(alias="Status")
    config: dict[str, Any] = Field(default_factory=dict, alias="Config")
    created_at: float = Field(alias="CreatedAt")
    queued_at: float | None = Field(default=None, alias="QueuedAt")
    started_at: float | None = Field(default=None, alias="StartedAt")
    finished_at: float | None = Field(default=None, alias="FinishedAt")
    duration: str | None = Field(default=None, alias="Duration")
    duration_seconds: float | None = Field(default=None, alias="DurationSeconds")
    # Run time leaves time spent Paused out (see docs/api.md).
    paused_seconds: float = Field(default=0.0, alias="PausedSeconds")
    paused_at: float | None = Field(default=None, alias="PausedAt")
    queue_position: int | None = Field(default=None, alias="QueuePosition")
    attempt: int = Field(default=1, alias="Attempt")
    attempts: list[dict[str, Any]] = Field(default_factory=list, alias="Attempts")
    retries: int | None = Field(default=None, alias="Retries")
    timeout: float | None = Field(default=None, alias="Timeout")
    progress: float | None = Field(default=None, alias="Progress")
    progress_message: str | None = Field(default=None, alias="ProgressMessage")
    output: Any = Field(default=None, alias="Output")
    error: str | None = Field(default=None, alias="Error")
    chain_id: str | None = Field(default=None, alias="ChainId")
    logs_dropped: int = Field(default=0, alias="LogsDropped")
    # URL (credentials masked), State, NextAttemptAt and Attempts; None without a callback.
    callback: dict[str, Any] | None = Field(default=None, alias="Callback")

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def traceback(self) -> str | None:
        """The current attempt's traceback once it has failed (Python workers), else None."""
        for entry in reversed(self.attempts):
            if entry.get("Attempt") == self.attempt:
                text = entry.get("Traceback")
                return text if isinstance(text, str) else None
        return None


class TaskResult(_Wire):
    task_id: str = Field(alias="TaskId")
    status: Status = Field(alias="Status")
    output: Any = Field(default=None, alias="Output")
    error: str | None = Field(default=None, alias="Error")


class TaskUpdated(_Wire):
    task_id: str = Field(alias="TaskId")
    status: Status = Field(alias="Status")
    config: dict[str, Any] = Field(default_factory=dict, alias="Config")


class LogLine(_Wire):
    seq: int = Field(alias="Seq")
    time: float = Field(alias="Time")
    line: str = Field(alias="Line")


class LogPage(_Wire):
    task_id: str = Field(alias="TaskId")
    status: Status = Field(alias="Status")
    lines: list[LogLine] = Field(alias="Lines")
    next: int = Field(alias="Next")
    dropped: int = Field(default=0, alias="Dropped")


class WorkerStatistics(_Wire):
    worker: str = Field(alias="Worker")
    tasks_performed: int = Field(default=0, alias="TasksPerformed")
    by_status: dict[str, int] = Field(default_factory=dict, alias="ByStatus")
    total: int = Field(default=0, alias="Total")
    failure_rate: float | None = Field(default=None, alias="FailureRate")
    average_run_time_seconds: float | None = Field(default=None, alias="AverageRunTimeSeconds")
    run_time_percentiles_seconds: dict[str, float | None] = Field(
        default_factory=dict, alias="RunTimePercentilesSeconds"
    )
    average_queue_wait_seconds: float | None = Field(default=None, alias="AverageQueueWaitSeconds")
    running_now: int = Field(default=0, alias="RunningNow")
    queued_now: int = Field(default=0, alias="QueuedNow")


class TaskStatistics(_Wire):
    task_id: str = Field(alias="TaskId")
    worker: str = Field(alias="Worker")
    status: Status = Field(alias="Status")
    attempt: int = Field(default=1, alias="Attempt")
    # Every attempt that started, with its timing (the record's Attempts, timings only).
    attempts: list[dict[str, Any]] = Field(default_factory=list, alias="Attempts")
    queue_wait_seconds: float | None = Field(default=None, alias="QueueWaitSeconds")
    run_time_seconds: float | None = Field(default=None, alias="RunTimeSeconds")
    total_run_time_seconds: float | None = Field(default=None, alias="TotalRunTimeSeconds")


class ChainSummary(_Wire):
    chain_id: str = Field(alias="ChainId")
    name: str | None = Field(default=None, alias="Name")
    definition: str | None = Field(default=None, alias="Definition")
    status: Status = Field(alias="Status")
    created_at: float = Field(alias="CreatedAt")
    finished_at: float | None = Field(default=None, alias="FinishedAt")
    restarts: int = Field(default=0, alias="Restarts")
    error: str | None = Field(default=None, alias="Error")
    duration: str | None = Field(default=None, alias="Duration")
    duration_seconds: float | None = Field(default=None, alias="DurationSeconds")

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


class ChainStep(_Wire):
    name: str = Field(alias="Name")
    stage: int = Field(alias="Stage")
    group: str | None = Field(default=None, alias="Group")
    worker: str = Field(alias="Worker")
    when: str = Field(default="success", alias="When")
    # Steps have statuses of their own beyond a task's: Pending and Skipped.
    status: str = Field(alias="Status")
    task_id: str | None = Field(default=None, alias="TaskId")
    attempt: int | None = Field(default=None, alias="Attempt")
    started_at: float | None = Field(default=None, alias="StartedAt")
    finished_at: float | None = Field(default=None, alias="FinishedAt")
    duration_seconds: float | None = Field(default=None, alias="DurationSeconds")
    error: str | None = Field(default=None, alias="Error")
    output: Any = Field(default=None, alias="Output")
    previous_task_ids: list[str] = Field(default_factory=list, alias="PreviousTaskIds")


class Chain(ChainSummary):
    """A chain with its steps (``GET /chains/{id}``)."""

    parameters: dict[str, Any] = Field(default_factory=dict, alias="Parameters")
    on_failure: str | None = Field(default=None, alias="OnFailure")
    result: Any = Field(default=None, alias="Result")
    steps: list[ChainStep] = Field(default_factory=list, alias="Steps")


class ChainPage(_Wire):
    chains: list[ChainSummary] = Field(alias="Chains")
    next_cursor: str | None = Field(default=None, alias="NextCursor")


class ChainDefinition(_Wire):
    name: str = Field(alias="Name")
    source: str = Field(default="api", alias="Source")
    description: str = Field(default="", alias="Description")
    parameters: dict[str, Any] = Field(default_factory=dict, alias="Parameters")
    created_at: float | None = Field(default=None, alias="CreatedAt")
    updated_at: float | None = Field(default=None, alias="UpdatedAt")
    definition: dict[str, Any] | None = Field(
        default=None, alias="Definition", description="Absent in lists."
    )


class Schedule(_Wire):
    name: str = Field(alias="Name")
    worker: str | None = Field(default=None, alias="Worker")
    config: dict[str, Any] | None = Field(default=None, alias="Config")
    chain: str | None = Field(default=None, alias="Chain")
    parameters: dict[str, Any] | None = Field(default=None, alias="Parameters")
    cron: str | None = Field(default=None, alias="Cron")
    interval: float | None = Field(default=None, alias="Interval")
    every: str | None = Field(default=None, alias="Every")
    timezone: str = Field(default="UTC", alias="TimeZone")
    catch_up: str = Field(default="skip", alias="CatchUp")
    paused: bool = Field(default=False, alias="Paused")
    source: str = Field(default="api", alias="Source")
    created_at: float | None = Field(default=None, alias="CreatedAt")
    next_run: float | None = Field(default=None, alias="NextRun")
    last_run: float | None = Field(default=None, alias="LastRun")
    last_task_id: str | None = Field(default=None, alias="LastTaskId")
    last_chain_id: str | None = Field(default=None, alias="LastChainId")
    last_error: str | None = Field(default=None, alias="LastError")


class TokenInfo(_Wire):
    name: str = Field(alias="Name")
    role: str = Field(alias="Role")
    workers: list[str] | None = Field(default=None, alias="Workers")
    created_at: float = Field(alias="CreatedAt")
    expires_at: float | None = Field(default=None, alias="ExpiresAt")
    last_used_at: float | None = Field(default=None, alias="LastUsedAt")
    expired: bool = Field(default=False, alias="Expired")


class CreatedToken(TokenInfo):
    token: str = Field(alias="Token", repr=False)


class AuditEntry(_Wire):
    seq: int = Field(alias="Seq")
    time: float = Field(alias="Time")
    token: str = Field(alias="Token")
    client: str = Field(alias="Client")
    method: str = Field(alias="Method")
    route: str = Field(alias="Route")
    target: str = Field(alias="Target")
    status: int = Field(alias="Status")


class AuditPage(_Wire):
    entries: list[AuditEntry] = Field(alias="Entries")
    next_cursor: str | None = Field(default=None, alias="NextCursor")


class PruneResult(_Wire):
    tasks: int = Field(alias="Tasks")
    chains: int = Field(alias="Chains")
    dry_run: bool = Field(alias="DryRun")
    before: float = Field(alias="Before")
