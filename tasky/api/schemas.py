"""Pydantic models of the wire shapes, used to document the API (the OpenAPI document).

The handlers build these shapes directly with orjson for speed; tests check real answers against
these models so the document cannot drift from what the server sends.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorBody(_Open):
    Error: str = Field(description="What went wrong, for people.")


class FieldError(BaseModel):
    field: str
    message: str
    type: str


class ValidationErrorBody(ErrorBody):
    Fields: list[FieldError]


class TaskCreated(BaseModel):
    TaskId: str = Field(pattern=r"^[0-9a-f]{32}$")


class TasksCreated(BaseModel):
    TaskIds: list[str] = Field(description="The new tasks' ids, in the order of the configs.")


class BatchFieldError(FieldError):
    index: int = Field(description="The config's position in the batch (from 0).")


class BatchValidationErrorBody(ErrorBody):
    Fields: list[BatchFieldError] = Field(
        description="The first field errors; each field is spelled [index].name."
    )
    Indexes: list[int] = Field(description="Every invalid config's index; nothing was created.")


class WorkerSummary(_Open):
    name: str
    description: str
    config_objects: dict[str, Any] | None = Field(
        default=None, description="JSON Schema of the worker's config (absent when it has none)."
    )
    max_tasks: int
    mode: str
    actions: list[str]
    enabled: bool


NODE_TEXT = "The node that last started the task (null: it never started)."
TARGET_TEXT = (
    "Where the task may run: node:NAME (?node=), label:L (?label=); absent or null: any node."
)


class NodeBody(BaseModel):
    Name: str
    Labels: list[str]
    Workers: list[str] = Field(description="The workers the node serves.")
    RunningTasks: int = Field(description="Tasks the node holds now (Running, or paused mid-run).")
    LastHeartbeat: float
    Alive: bool = Field(description="Not stopped, and its last heartbeat within one lease.")
    StartedAt: float
    StoppedAt: float | None = Field(description="When it stopped gracefully (null: it did not).")


class NodeList(BaseModel):
    Nodes: list[NodeBody] = Field(description="Every node that ever registered, by name.")


RUN_TIME_TEXT = (
    "Running time only: time spent Paused is left out (a Paused task's run time stands still)."
)
PAUSED_SECONDS_TEXT = (
    "Time the current (or last) attempt spent Paused after it started, pauses that ended (the "
    "one under way counts once it ends). Run time = (PausedAt, or FinishedAt, or now) - "
    "StartedAt - PausedSeconds."
)
PAUSED_AT_TEXT = "When the pause under way began (a task Paused after it started); else null."
QUEUE_POSITION_TEXT = (
    "A Queued task's place in its worker's queue, 1 being the next to start (claim order: a "
    "retry in its backoff stands where its run time puts it); null unless Queued."
)


class TaskSummary(_Open):
    TaskId: str
    Status: str
    Worker: str
    CreatedAt: float
    StartedAt: float | None = Field(default=None, description="Start of the current attempt.")
    FinishedAt: float | None = None
    Duration: str | None = Field(default=None, description="Go-style duration, once finished.")
    Progress: float | None = None
    Node: str | None = Field(default=None, description=NODE_TEXT)
    Target: str | None = Field(default=None, description=TARGET_TEXT)
    PausedSeconds: float = Field(default=0.0, description=PAUSED_SECONDS_TEXT)
    PausedAt: float | None = Field(default=None, description=PAUSED_AT_TEXT)
    QueuePosition: int | None = Field(default=None, description=QUEUE_POSITION_TEXT)


class TaskList(BaseModel):
    Tasks: list[TaskSummary]
    NextCursor: str | None = Field(
        description="Pass as ?cursor= for the next page; null at the end."
    )


class TaskStatus(_Open):
    TaskId: str
    Status: str
    Progress: float | None = None
    ProgressMessage: str | None = None
    Error: str | None = None
    QueuePosition: int | None = Field(
        default=None,
        description=QUEUE_POSITION_TEXT + " Given by GET .../status, not by action answers.",
    )


OUTPUT_TEXT = (
    "Always an object: the worker's result once Completed (a string wrapped as "
    '{"string_output": ...}, another non-object value as {"value": ...}); {} otherwise.'
)


class TaskResult(_Open):
    TaskId: str
    Status: str
    Output: dict[str, Any] = Field(description=OUTPUT_TEXT)
    Error: str | None = None


class LogLineBody(BaseModel):
    Seq: int
    Time: float
    Line: str


class TaskLogs(BaseModel):
    TaskId: str
    Status: str
    Lines: list[LogLineBody]
    Next: int = Field(description="Pass as ?after= to fetch only newer lines.")
    Dropped: int = Field(description="Oldest lines dropped to keep the log bounded.")


class ActionRequest(BaseModel):
    action: Literal["cancel", "pause", "resume", "run"]


ATTEMPTS_TEXT = (
    "Every attempt of the task that started, oldest first: those that ended and the one under "
    "way (Running, or Paused mid-run, with FinishedAt null). A retry or a run (restart) adds one. "
    "The same list, with timings only, is in the task's statistics."
)


class AttemptBody(_Open):
    Attempt: int
    Status: str
    StartedAt: float | None
    FinishedAt: float | None = Field(description="null while the attempt is under way.")
    Error: str | None
    Output: dict[str, Any] = Field(description=OUTPUT_TEXT)
    Traceback: str | None = Field(
        description="A failed Python worker's traceback, capped at 16 KiB keeping the end."
    )
    Node: str | None = Field(default=None, description="The node that ran the attempt.")
    PausedSeconds: float = Field(
        default=0.0, description="Time between StartedAt and FinishedAt spent Paused."
    )


class TaskDetail(_Open):
    TaskId: str
    Worker: str
    Status: str
    Config: dict[str, Any]
    CreatedAt: float
    QueuedAt: float | None
    StartedAt: float | None
    FinishedAt: float | None
    Duration: str | None = Field(
        description="The current (or last) attempt's run time. " + RUN_TIME_TEXT
    )
    PausedSeconds: float = Field(default=0.0, description=PAUSED_SECONDS_TEXT)
    PausedAt: float | None = Field(default=None, description=PAUSED_AT_TEXT)
    QueuePosition: int | None = Field(default=None, description=QUEUE_POSITION_TEXT)
    Attempt: int = Field(description="The current attempt's number (1, then +1 per retry or run).")
    Attempts: list[AttemptBody] = Field(description=ATTEMPTS_TEXT)
    Progress: float | None
    Output: dict[str, Any] = Field(description=OUTPUT_TEXT)
    Error: str | None
    Callback: dict[str, Any] | None = Field(
        default=None, description="The task's callback: URL, State, Attempts (docs/callbacks.md)."
    )
    Node: str | None = Field(default=None, description=NODE_TEXT)
    Target: str | None = Field(default=None, description=TARGET_TEXT)


class AttemptTiming(BaseModel):
    Attempt: int
    Status: str
    StartedAt: float | None
    FinishedAt: float | None = Field(description="null while the attempt is under way.")
    PausedSeconds: float = Field(default=0.0, description="Time it spent Paused.")
    RunTimeSeconds: float | None = Field(
        description="Up to now while it is under way. " + RUN_TIME_TEXT
    )


class TaskStatistics(_Open):
    TaskId: str
    Status: str
    Attempt: int = Field(description="The current attempt's number: how many attempts so far.")
    Attempts: list[AttemptTiming] = Field(
        description="The task's attempts, as in the task record (GET /tasks/{id}), with their "
        "timings."
    )
    QueueWaitSeconds: float | None
    RunTimeSeconds: float | None = Field(
        description="The current (or last) attempt's run time. " + RUN_TIME_TEXT
    )
    TotalRunTimeSeconds: float = Field(description="Run time of every attempt added up.")


class HistogramBucket(BaseModel):
    FromSeconds: float = Field(description="Shortest run time in the bucket (included).")
    ToSeconds: float = Field(description="Longest run time in the bucket (excluded).")
    Count: int


class WorkerStatistics(_Open):
    Worker: str
    TasksPerformed: int = Field(
        description="Runs that ended (Completed, Failed or Canceled attempts): a task run again "
        "or retried counts once per run, so this can exceed Total. The averages, percentiles and "
        "histogram are over these runs."
    )
    ByStatus: dict[str, int] = Field(
        description="Tasks by their current status (pruned tasks keep counting as they ended)."
    )
    Total: int = Field(description="Tasks: the sum of ByStatus, each task once.")
    FailureRate: float | None = Field(
        description="Failed / (Completed + Failed) tasks; null before any ended."
    )
    AverageRunTimeSeconds: float | None = Field(description=RUN_TIME_TEXT)
    RunTimePercentilesSeconds: dict[str, float | None] = Field(
        description="p50, p90, p99 read from the histogram (within 5 %); when every run fell in "
        "one bucket, the average (exact for a single run)."
    )
    RunTimeHistogram: list[HistogramBucket] = Field(
        description="Runs by run time, in log-scale buckets 10 % wide, shortest first; empty "
        "buckets left out."
    )
    AverageQueueWaitSeconds: float | None


class ApiIndex(_Open):
    """``GET /tasky/v1``: paths to start from."""

    Name: str
    Version: str
    Docs: str = Field(description="The interactive API docs (Swagger UI).")
    OpenAPI: str = Field(description="The OpenAPI 3.1 document.")
    Page: str = Field(description="The web page.")
