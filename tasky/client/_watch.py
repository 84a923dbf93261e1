"""What following a task means, written once for both clients (sans I/O).

A :class:`Tracker` holds what is known about one task (its last status, how far its log has been
read, the deadline) and decides what each server event calls for. The clients only do the I/O:
open the event stream or poll, fetch the status, fetch log lines, sleep.
"""

from __future__ import annotations

import enum
import time
from typing import Any

from tasky.client.errors import WaitTimeout
from tasky.client.models import Chain, TaskStatus

LOG_PAGE = 1000
# Polling starts fast (short tasks end quickly) and slows down while nothing changes.
POLL_FIRST = 0.05
POLL_MAX = 1.0
# Without any event for this long, re-read the status and reconnect: a safety net against an
# event stream that went quiet without closing (a proxy, a half-open connection). The server
# sends a keep-alive comment every 15 s, so a healthy stream never gets here.
QUIET_RECONNECT = 40.0
# Wait this long before reconnecting a stream the server closed, so a server that keeps closing
# it is not hammered.
RECONNECT_PAUSE = 0.25
# A server that goes away while a task is followed (a restart) gets this long to come back
# before the client gives up with ServerUnreachable. A server that is not there at the start is
# reported at once.
RECONNECT_GRACE = 15.0


class NoEvents(Exception):
    """The server has no event stream (an older server): poll instead."""


class Step(enum.Enum):
    NOTHING = "nothing"
    CHANGED = "changed"  # the tracker's status changed from the event alone (progress)
    REFRESH = "refresh"  # the status moved: read it from the server (it has the error, etc.)
    LOGS = "logs"  # new log lines to read


class Tracker:
    def __init__(
        self,
        task_id: str,
        timeout: float | None,
        want_logs: bool,
        reconnect_grace: float = RECONNECT_GRACE,
        kind: str = "task",
    ) -> None:
        if timeout is not None and timeout < 0:
            raise ValueError("timeout must be >= 0")
        self.task_id = task_id
        self.kind = kind
        # What wait_chain last read (check_deadline reports it).
        self.last_chain: Chain | None = None
        self.timeout = timeout
        self.want_logs = want_logs
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.current: TaskStatus | None = None
        self.log_after = 0
        self.last_event_id: str | None = None
        self._poll = POLL_FIRST
        self._reached = False
        self._grace = reconnect_grace
        self._lost_since: float | None = None

    @property
    def finished(self) -> bool:
        return self.current is not None and self.current.finished

    def remaining(self) -> float | None:
        return None if self.deadline is None else max(self.deadline - time.monotonic(), 0.0)

    def check_deadline(self) -> None:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            last = self.current if self.last_chain is None else self.last_chain
            raise WaitTimeout(self.task_id, self.timeout or 0.0, last, self.kind)

    def reached(self) -> None:
        """The server answered: a later outage starts a new grace period."""
        self._reached = True
        self._lost_since = None

    def see(self, status: TaskStatus) -> bool:
        """Record a status read from the server; True when it differs from the last one."""
        self.reached()
        changed = status != self.current
        self.current = status
        return changed

    def may_retry(self) -> bool:
        """After the server stopped answering: keep trying (True) or give up (False)?"""
        if not self._reached:
            return False
        now = time.monotonic()
        if self._lost_since is None:
            self._lost_since = now
        if self.deadline is not None and now >= self.deadline:
            return False
        return now - self._lost_since < self._grace

    def on_event(self, event: Any) -> Step:
        if not isinstance(event, dict):
            return Step.NOTHING
        kind = event.get("type")
        if kind == "stream.reset":
            # The server could not replay what this stream missed: read the state afresh.
            return Step.REFRESH
        if event.get("task") != self.task_id:
            return Step.NOTHING
        if kind == "task.status":
            return Step.REFRESH
        if kind == "task.progress" and self.current is not None:
            progress = event.get("progress")
            message = event.get("message")
            updated = self.current.model_copy(
                update={
                    "progress": float(progress) if isinstance(progress, int | float) else None,
                    "progress_message": message if isinstance(message, str) else None,
                }
            )
            return Step.CHANGED if self.see(updated) else Step.NOTHING
        if kind == "task.log" and self.want_logs:
            return Step.LOGS
        return Step.NOTHING

    def read_timeout(self) -> float:
        """How long one read of the event stream may block."""
        remaining = self.remaining()
        return QUIET_RECONNECT if remaining is None else min(QUIET_RECONNECT, remaining + 0.01)

    def reconnect_pause(self) -> float:
        remaining = self.remaining()
        return RECONNECT_PAUSE if remaining is None else min(RECONNECT_PAUSE, remaining)

    def next_poll(self, changed: bool) -> float:
        """Seconds to sleep before the next poll (never past the deadline)."""
        self._poll = POLL_FIRST if changed else min(self._poll * 1.5, POLL_MAX)
        remaining = self.remaining()
        return self._poll if remaining is None else min(self._poll, remaining)
