"""Engine errors the API maps to status codes (IllegalMove, from tasky.states, maps to 409)."""

from __future__ import annotations


class NotFound(Exception):
    """No such worker or task (404)."""


class Unsupported(Exception):
    """The worker does not support this action, or the action is unknown (409)."""


class WorkerDisabled(Exception):
    """The worker is disabled and takes no new tasks (409)."""
