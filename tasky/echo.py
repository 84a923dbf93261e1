"""How a value from outside is repeated in an error message: bounded, control characters escaped.

An error that echoes a 5,000-character id in full makes logs and terminals the attacker's canvas.
"""

from __future__ import annotations

SHOWN_CHARS = 64


def clip(text: str, limit: int = SHOWN_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


def shown(value: object, limit: int = SHOWN_CHARS) -> str:
    """``repr(value)`` (quoted, control characters escaped), cut to ``limit`` characters."""
    return clip(repr(value), limit)
