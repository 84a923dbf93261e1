"""A decoder for ``text/event-stream`` (Server-Sent Events), fed one line at a time (sans I/O)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ServerEvent:
    id: str | None
    event: str
    data: str

    def json(self) -> Any:
        """The data as JSON, or None when it is not JSON (such events are skipped by callers)."""
        try:
            return json.loads(self.data)
        except ValueError:
            return None


class SSEDecoder:
    """Follows the WHATWG rules: ``data:`` lines accumulate, a blank line dispatches, ``id:``
    persists across events (it is what a reconnect sends as ``Last-Event-ID``), ``:`` starts a
    comment (servers send those as keep-alives)."""

    def __init__(self) -> None:
        self.last_id: str | None = None
        self._data: list[str] = []
        self._event = ""

    def feed(self, line: str) -> ServerEvent | None:
        if not line:
            if not self._data:
                self._event = ""
                return None
            event = ServerEvent(self.last_id, self._event or "message", "\n".join(self._data))
            self._data = []
            self._event = ""
            return event
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self.last_id = value
        return None
