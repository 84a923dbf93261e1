"""Security headers for what a browser renders: the web page and the API docs page.

Both pages get the same set; only their Content-Security-Policy differs (Swagger UI is a
third-party bundle with needs of its own). ``frame-ancestors 'none'`` and ``X-Frame-Options``
stop another site from framing a page to trick clicks out of the user.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


def security_headers(csp: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        # Revalidate (ETag) on every load: an upgraded server never runs an old script.
        "Cache-Control": "no-cache",
    }


def with_headers(app: ASGIApp, headers: dict[str, str]) -> ASGIApp:
    """``app`` (static files) answering with ``headers``, replacing any it set itself."""
    extra = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    names = {k for k, _ in extra}

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": kept + extra}
            await send(message)

        await app(scope, receive, send_with_headers)

    return wrapped
