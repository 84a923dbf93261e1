"""Engine errors the API maps to status codes (IllegalMove, from tasky.states, maps to 409)."""

from __future__ import annotations

from pydantic import ValidationError


class NotFound(Exception):
    """No such worker or task (404)."""


class Unsupported(Exception):
    """The worker does not support this action, or the action is unknown (409)."""


class WorkerDisabled(Exception):
    """The worker is disabled and takes no new tasks (409)."""


class NoNodeForTarget(Exception):
    """No live node that serves the worker matches the task's target (422)."""


class QueueFull(Exception):
    """The worker's queue holds as many waiting tasks as it may (429, with Retry-After)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotWritten(Exception):
    """A submit's own write (see Engine.submit's ``write``) found its condition unmet: no task
    was created."""


class Draining(Exception):
    """The server is shutting down and takes no new work (503, with Retry-After)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BatchInvalid(Exception):
    """Some configs of a batch submit are invalid; nothing was created (422).

    ``errors`` maps the index of each bad config to its field errors.
    """

    def __init__(self, errors: dict[int, ValidationError]) -> None:
        self.errors = errors
        bad = ", ".join(str(index) for index in sorted(errors)[:20])
        more = f" and {len(errors) - 20} more" if len(errors) > 20 else ""
        super().__init__(f"invalid config at index {bad}{more}; no task was created")
