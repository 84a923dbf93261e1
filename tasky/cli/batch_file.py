"""``tasky submit NAME --from FILE.jsonl``: many tasks from a file of configs, one per line.

Every line is read and checked before anything is sent, so a file with a bad line creates no
task; the server's own refusals (a config its worker rejects) are reported by line number too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasky.cli.kv import ConfigError
from tasky.client import BatchIncomplete, TaskyError, ValidationFailed

# A file with many bad lines names this many (and counts the rest).
SHOWN_BAD_LINES = 20


@dataclass(frozen=True, slots=True)
class ConfigLines:
    """The configs of a JSON Lines file, and the line number each came from (from 1)."""

    configs: list[dict[str, Any]]
    line_numbers: list[int]


def read_config_lines(path: str, stdin_text: str | None = None) -> ConfigLines:
    """Each non-blank line a JSON object; ConfigError naming every bad line otherwise."""
    if path == "-":
        text = stdin_text or ""
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path} is not UTF-8 text: {exc.reason}") from None
    configs: list[dict[str, Any]] = []
    numbers: list[int] = []
    bad: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            bad.append(f"line {number}: not JSON ({exc.msg})")
            continue
        if not isinstance(value, dict):
            bad.append(f"line {number}: not a JSON object (a config is key: value pairs)")
            continue
        configs.append(value)
        numbers.append(number)
    name = "standard input" if path == "-" else path
    if bad:
        raise ConfigError(_listed(f"{name} has {len(bad)} bad line(s)", bad))
    if not configs:
        raise ConfigError(f"{name} holds no config (one JSON object per line)")
    return ConfigLines(configs, numbers)


def refusal_by_line(error: TaskyError, lines: ConfigLines) -> ConfigError | None:
    """The server's 422 for a batch, its config indexes turned into the file's line numbers;
    None for any other refusal."""
    if not isinstance(error, ValidationFailed):
        return None
    by_line: dict[int, list[str]] = {}
    for field in error.fields:
        index, _, rest = field.field.removeprefix("[").partition("]")
        if not index.isdigit() or int(index) >= len(lines.line_numbers):
            return None
        name = rest.removeprefix(".")
        message = f"{name}: {field.message}" if name else field.message
        by_line.setdefault(lines.line_numbers[int(index)], []).append(message)
    if not by_line:
        return None
    bad = [f"line {n}: {'; '.join(messages)}" for n, messages in sorted(by_line.items())]
    return ConfigError(_listed("the worker refused these configs", bad))


def created_before(error: TaskyError) -> list[str]:
    """The ids of the tasks created before a chunk was refused (none for other errors)."""
    return error.task_ids if isinstance(error, BatchIncomplete) else []


def _listed(head: str, items: list[str]) -> str:
    shown = items[:SHOWN_BAD_LINES]
    more = len(items) - len(shown)
    tail = [f"... and {more} more"] if more else []
    return "\n".join([head + ":", *(f"  {item}" for item in shown), *tail])
