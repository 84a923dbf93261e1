"""The log handler's lines, without a server: one line per record, JSON fields, redaction."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest

from tasky.engine.tracebacks import MAX_TRACEBACK_BYTES, cap_traceback, format_failure
from tasky.logs import make_handler, task_fields


def emit(log_format: str, msg: str, *args: object, **kw: object) -> str:
    out = io.StringIO()
    handler = make_handler(log_format, "node-1", out)
    record = logging.LogRecord("tasky.engine", logging.WARNING, __file__, 1, msg, args, None)
    record.__dict__.update(kw)
    assert handler.filter(record)
    handler.emit(record)
    return out.getvalue()


def test_text_lines_stay_one_line_with_controls_written_out() -> None:
    text = emit("text", "failed: %s", "a\nWARNING forged\r\x1b[2Jb\tc")
    assert text.count("\n") == 1
    assert "failed: a\\nWARNING forged\\r\\x1b[2Jb\tc" in text
    assert " WARNING tasky.engine " in text


def test_json_lines_have_their_fields_and_no_raw_controls() -> None:
    text = emit("json", "task %s failed", "t1", **task_fields("t1", "W"), other="x")
    assert text.count("\n") == 1
    entry = json.loads(text)
    assert entry["message"] == "task t1 failed"
    assert (entry["level"], entry["logger"], entry["node"]) == ("WARNING", "tasky.engine", "node-1")
    assert (entry["task_id"], entry["worker"]) == ("t1", "W")
    assert "other" not in entry  # only the documented fields
    assert entry["time"].endswith("Z") and "T" in entry["time"]
    c1 = emit("json", "%s", "a\x9bb\x7f")
    assert "\x9b" not in c1 and json.loads(c1)["message"] == "a\x9bb\x7f"


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_url_credentials_are_redacted_in_every_format(log_format: str) -> None:
    text = emit(log_format, "GET %s", "https://user:s3cret@example.test/x")
    assert "s3cret" not in text and "***@example.test/x" in text


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="text, json"):
        make_handler("xml", "n")


def test_a_logged_exception_still_follows_its_line() -> None:
    out = io.StringIO()
    handler = make_handler("json", "n", out)
    try:
        raise KeyError("k")
    except KeyError:
        info = sys.exc_info()
    record = logging.LogRecord("tasky", logging.ERROR, __file__, 1, "oops", (), info)
    handler.emit(record)
    assert "KeyError: 'k'" in json.loads(out.getvalue())["exception"]


def test_cap_keeps_the_end_within_the_limit() -> None:
    assert cap_traceback("short\n") == "short\n"
    text = "".join(f"line {i} é\n" for i in range(5000))
    capped = cap_traceback(text)
    assert len(capped.encode()) <= MAX_TRACEBACK_BYTES
    assert capped.endswith("line 4999 é\n")
    first, second = capped.split("\n", 2)[:2]
    assert first.startswith("[... ") and first.endswith(" bytes cut ...]")
    assert second.startswith("line ") and second.endswith(" é")  # a whole line


def test_formatted_failures_show_no_locals() -> None:
    def broken() -> None:
        token = "tok-never-shown"
        raise RuntimeError("visible message " + token[:3])

    try:
        broken()
    except RuntimeError as exc:
        text = format_failure(exc)
    assert "in broken" in text and "RuntimeError: visible message tok\n" in text
    assert "tok-never-shown" not in text
