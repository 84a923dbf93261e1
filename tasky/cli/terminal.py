"""Text from a server, shown to people: control characters made visible, rich markup inert.

A task's log line, result or error is whatever its program printed. Written raw to a terminal,
``ESC ] 52`` sets the clipboard, other sequences move the cursor, retitle the window or hide
text, and a carriage return overwrites what was printed; through rich, ``[link=...]`` or ``[red]``
would be read as markup. Every server string a human command prints goes through :func:`safe`
(or :func:`visible` where markup is off). ``--json`` output keeps the values as they are.
"""

from __future__ import annotations

import json
import re
from typing import Any

from rich.markup import escape

# C0 except tab and newline, DEL, and C1 (U+0080-U+009F: 8-bit CSI, OSC, ...).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# What json.dumps leaves raw inside strings (it escapes the rest of C0 itself).
_JSON_RAW_CONTROL = re.compile(r"[\x7f-\x9f]")


def _hex(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group(0)):02x}"


def visible(text: str) -> str:
    """``text`` with each control character written out, e.g. ESC as ``\\x1b``."""
    return _CONTROL.sub(_hex, text)


def safe(text: object) -> str:
    """``text`` ready for rich markup: control characters visible, brackets escaped."""
    return escape(visible(str(text)))


def visible_json(data: Any) -> str:
    """Indented JSON whose strings hold no raw control character (C0 is escaped by JSON)."""
    text = json.dumps(data, indent=2, ensure_ascii=False)
    return _JSON_RAW_CONTROL.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)
