"""Per-token rate limit: a token bucket per principal name, in memory (one server's view)."""

from __future__ import annotations

import math
import time


class RateLimiter:
    """``rate`` requests per second per name, with bursts of up to ``rate`` (at least 1)."""

    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError("the rate limit must be positive")
        self.rate = rate
        self.burst = max(1.0, rate)
        # name -> (tokens left, when counted). Names are token names: as many as stored tokens.
        self._buckets: dict[str, tuple[float, float]] = {}

    def wait(self, name: str, now: float | None = None) -> float:
        """0 if the request may go now (and count it); else seconds until it may."""
        now = time.monotonic() if now is None else now
        tokens, then = self._buckets.get(name, (self.burst, now))
        tokens = min(self.burst, tokens + (now - then) * self.rate)
        if tokens >= 1.0:
            self._buckets[name] = (tokens - 1.0, now)
            return 0.0
        self._buckets[name] = (tokens, now)
        return (1.0 - tokens) / self.rate

    @staticmethod
    def retry_after(wait: float) -> str:
        """The Retry-After header: whole seconds, never 0 (a client would retry at once)."""
        return str(max(1, math.ceil(wait)))
