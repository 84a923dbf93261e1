"""Callback signatures: ``Tasky-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">``.

The timestamp is inside the signed text so a receiver can refuse old deliveries (replays); the
``v1`` label leaves room for another scheme without breaking receivers of this one.
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "Tasky-Signature"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    signed = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The header's value."""
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def verify(secret: str, header: str, body: bytes, now: float, tolerance: float = 300.0) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` and is at most ``tolerance`` s old
    (what a receiver does; docs/callbacks.md shows the same in a few lines)."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(fields.get("v1", ""), signature(secret, timestamp, body))
