"""HTTPCheck: GET a URL and report its status code and latency."""

from __future__ import annotations

import time
from typing import Any

import httpx
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

from tasky.net.outbound import OutboundRefused, async_client, explain
from tasky.redact import redact_url
from tasky.workers.base import Worker
from tasky.workers.context import AsyncTaskContext

# Only this much of the body is read: the check is about reachability, not content.
_MAX_BODY = 1 << 20


class HTTPCheckConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl = Field(description="http:// or https:// URL to GET.")
    timeout: float = Field(default=10, gt=0, le=300, description="Seconds before giving up.")
    expect_status: int | None = Field(
        default=None, ge=100, le=599, description="Fail unless the response has this status."
    )
    follow_redirects: bool = False


class HTTPCheck(Worker):
    name = "HTTPCheck"
    description = "HTTPCheck sends a GET request to a URL and reports the status code and latency."
    usage = (
        "Give url, and optionally timeout, expect_status (the task fails on another status) and "
        "follow_redirects. Connection errors are reported in the result, not as a failure, "
        "unless expect_status is set. Only public addresses are reached, on every redirect too, "
        "unless the server allows more (--outbound-allow); other targets fail the task as "
        "refused by policy. A URL's user:password is never shown."
    )
    Config = HTTPCheckConfig
    max_tasks = 20
    idempotent = True

    async def perform(self, config: HTTPCheckConfig, task: AsyncTaskContext) -> dict[str, Any]:
        url = str(config.url)
        # What is shown (result, log, errors) never carries the URL's user:password.
        shown = redact_url(url)
        started = time.perf_counter()
        out: dict[str, Any] = {"url": shown}
        async with async_client(
            task.outbound, timeout=config.timeout, follow_redirects=config.follow_redirects
        ) as client:
            try:
                async with client.stream("GET", url) as response:
                    first_byte = time.perf_counter() - started
                    size = 0
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size >= _MAX_BODY:
                            break
                    out.update(
                        status=response.status_code,
                        reason=response.reason_phrase,
                        ok=response.is_success,
                        latency_ms=round(first_byte * 1000, 3),
                        total_ms=round((time.perf_counter() - started) * 1000, 3),
                        bytes_read=size,
                        http_version=response.http_version,
                        final_url=redact_url(str(response.url)),
                    )
            except (OutboundRefused, httpx.UnsupportedProtocol) as exc:
                # Not the target's failure but the request's: the task fails, whatever the port.
                refused = explain(exc, httpx.URL(url))
                task.log(f"GET {shown} -> {refused}")
                raise OutboundRefused(refused) from None
            except httpx.HTTPError as exc:
                out.update(
                    status=None,
                    ok=False,
                    error=explain(exc, httpx.URL(url)),
                    total_ms=round((time.perf_counter() - started) * 1000, 3),
                )
        task.log(f"GET {shown} -> {out.get('status') or out.get('error')} in {out['total_ms']} ms")
        if config.expect_status is not None and out["status"] != config.expect_status:
            raise RuntimeError(
                f"expected status {config.expect_status}, got {out['status']}"
                + (f" ({out['error']})" if "error" in out else "")
            )
        return out
