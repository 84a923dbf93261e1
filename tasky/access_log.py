"""The access log (``--access-log``): one INFO line per HTTP request, on logger ``tasky.access``.

It wraps the whole application, so requests the guard refuses are logged too. A line is written
when the response has ended, with its status and how long it took (an event stream's line comes
when the stream closes). The path is logged without its query string: query values are the
caller's data, and this log may be kept longer and shown more widely than the tasks are.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("tasky.access")


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status = 500  # what the client gets if the application fails before answering

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            client = scope.get("client")
            peer = f"{client[0]}:{client[1]}" if client else "-"
            method, path = scope["method"], scope["path"]
            millis = round((time.monotonic() - started) * 1000, 1)
            log.info(
                '%s "%s %s" %d %.1f ms',
                peer,
                method,
                path,
                status,
                millis,
                extra={
                    "client": peer,
                    "method": method,
                    "path": path,
                    "status": status,
                    "duration_ms": millis,
                },
            )
