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


class TaskSummary(_Open):
    TaskId: str
    Status: str
    Worker: str
    CreatedAt: float
    StartedAt: float | None = Field(default=None, description="Start of the current attempt.")
    FinishedAt: float | None = None
    Duration: str | None = Field(default=None, description="Go-style duration, once finished.")
    Progress: float | None = None


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


class TaskResult(_Open):
    TaskId: str
    Status: str
    Output: dict[str, Any] | None
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


class TaskDetail(_Open):
    TaskId: str
    Worker: str
    Status: str
    Config: dict[str, Any]
    CreatedAt: float
    QueuedAt: float | None
    StartedAt: float | None
    FinishedAt: float | None
    Duration: str | None
    Attempt: int
    Attempts: list[dict[str, Any]] = Field(
        description="Attempts that ended: Attempt, Status, StartedAt, FinishedAt, Error, Output, "
        "and Traceback (a failed Python worker's, capped at 16 KiB keeping the end; else null)."
    )
    Progress: float | None
    Output: dict[str, Any] | None
    Error: str | None
    Callback: dict[str, Any] | None = Field(
        default=None, description="The task's callback: URL, State, Attempts (docs/callbacks.md)."
    )


class TaskStatistics(_Open):
    TaskId: str
    Status: str
    Attempts: int
    QueueWaitSeconds: float | None
    RunTimeSeconds: float | None


class WorkerStatistics(_Open):
    Worker: str
    TasksPerformed: int
    ByStatus: dict[str, int]
    FailureRate: float | None
    AverageRunTimeSeconds: float | None
    RunTimePercentilesSeconds: dict[str, float | None]
    AverageQueueWaitSeconds: float | None
