"""A failed attempt's traceback, as stored with the attempt: formatted, capped, no secrets.

Formatted the standard way, which shows each frame's file, line and source text but never its
local variables, so a secret the worker held in a variable stays out. (The exception's message
is shown, as the task's Error already is.) A deep or recursive failure can produce megabytes, so
the text is capped, keeping its end: the innermost frames and the exception are what explain it.
"""

from __future__ import annotations

import traceback

MAX_TRACEBACK_BYTES = 16 * 1024
# Room kept for the note that says how much was cut.
_NOTE_ROOM = 64


def format_failure(exc: BaseException) -> str:
    """The traceback of ``exc`` (with its chained causes), capped."""
    return cap_traceback("".join(traceback.format_exception(exc)))


def cap_traceback(text: str, limit: int = MAX_TRACEBACK_BYTES) -> str:
    """``text`` if it fits in ``limit`` UTF-8 bytes, else a note followed by its last bytes."""
    data = text.encode("utf-8", "backslashreplace")
    if len(data) <= limit:
        return text
    tail = data[len(data) - (limit - _NOTE_ROOM) :]
    # Start at a line boundary when there is one, so the first line shown is a whole line.
    newline = tail.find(b"\n")
    if 0 <= newline < len(tail) - 1:
        tail = tail[newline + 1 :]
    cut = len(data) - len(tail)
    return f"[... {cut} bytes cut ...]\n" + tail.decode("utf-8", "ignore")
