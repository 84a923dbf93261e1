"""Caps on open event streams: in all, and per caller.

An event stream holds a connection, a subscriber queue and a task for as long as the client
likes, so without a cap a few clients could hold the server's every resource. The per-caller
cap (by token name; "anonymous" when the server has no tokens) keeps one caller from taking
the whole total.
"""

from __future__ import annotations

from collections import Counter

from tasky.http.responses import JSONResponse, error_response

# Seconds a refused client is told to wait: streams end when their clients go away.
RETRY_AFTER = "5"


class StreamCaps:
    def __init__(self, total: int, per_principal: int) -> None:
        self.total = total
        self.per_principal = per_principal
        self.open = 0
        self._by_principal: Counter[str] = Counter()

    def acquire(self, principal: str) -> JSONResponse | None:
        """Count one more stream for ``principal``; or, over a cap, the answer (429 or 503)."""
        if self._by_principal[principal] >= self.per_principal:
            refusal = error_response(
                429,
                f"too many event streams for {principal!r} (at most {self.per_principal}): "
                "close one first",
            )
        elif self.open >= self.total:
            refusal = error_response(
                503, f"the server already serves its most event streams ({self.total})"
            )
        else:
            self._by_principal[principal] += 1
            self.open += 1
            return None
        refusal.headers["Retry-After"] = RETRY_AFTER
        return refusal

    def release(self, principal: str) -> None:
        self.open -= 1
        self._by_principal[principal] -= 1
        if self._by_principal[principal] <= 0:
            del self._by_principal[principal]
