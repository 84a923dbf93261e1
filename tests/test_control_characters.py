"""The control-character check of configs (tasky.workers.strict): its byte-level shortcut answers
exactly as the regex it stands in for, for every character, wherever it sits in a long text."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from tasky import AllowControl, MultilineStr
from tasky.workers.strict import STRICT, Multiline, control_character, validate_config

# Every character up to U+3000 (C0, DEL, C1, the 0xC2 lead byte's neighbours, two- and
# three-byte sequences), the lone surrogates UTF-8 cannot encode, and characters of four bytes.
CHARACTERS = [
    *range(0x3000),
    *range(0xD7F0, 0xE010),
    0xFEFF,
    0xFFFD,
    0xFFFF,
    0x10000,
    0x1F600,
    0x10FFFF,
]


@pytest.mark.parametrize("allowance", [STRICT, Multiline, AllowControl], ids=repr)
def test_the_shortcut_finds_exactly_what_the_regex_finds(allowance: Any) -> None:
    regex = allowance.refused
    padding = "é漢" * 200 + "x" * 500
    for code in CHARACTERS:
        for text in (chr(code), padding + chr(code), chr(code) + padding, "°" + chr(code)):
            found = regex.search(text)
            expected = found.group(0) if found is not None else None
            assert control_character(text, allowance) == expected, (hex(code), allowance)


def test_a_control_character_at_the_end_of_a_long_config_is_refused() -> None:
    class Blob(BaseModel):
        text: str
        lines: MultilineStr = ""

    for bad in ("\x00", "\x1b", "\x7f", "\x85", "\x9f"):
        with pytest.raises(ValidationError, match="control characters") as raised:
            validate_config(Blob, {"text": "x" * 65_536 + bad})
        assert raised.value.errors()[0]["loc"] == ("text",)
        with pytest.raises(ValidationError, match="control characters"):
            validate_config(Blob, {"text": "ok", "lines": "é\n" * 30_000 + bad})
    # What the fields allow passes, however long.
    assert validate_config(Blob, {"text": "°é漢" * 30_000, "lines": "a\r\n\tb" * 20_000})
