"""One source for each worker default: the Worker and CommandWorker classes (and Param).

The ``worker`` decorator, ``make_command_worker`` and the TOML config file take what they leave
unsaid from those classes; nothing else holds a copy that could drift.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from tasky.config_file import load_workers
from tasky.workers.base import Worker, worker
from tasky.workers.command import CommandWorker, Param

WORKER_DEFAULTS = (
    "Config",
    "max_tasks",
    "mode",
    "actions",
    "idempotent",
    "timeout",
    "retries",
    "retry_backoff",
    "kill_grace",
    "retention_days",
)
COMMAND_DEFAULTS = (
    "max_tasks",
    "max_queued",
    "retention_days",
    "actions",
    "idempotent",
    "timeout",
    "retries",
    "kill_grace",
    "output",
    "stdout_tail",
    "success_codes",
    "progress_pattern",
)


def test_the_worker_decorator_takes_the_class_defaults() -> None:
    @worker("Plain")
    def plain(config: Any, task: Any) -> None:
        return None

    for name in WORKER_DEFAULTS:
        assert getattr(plain, name) == getattr(Worker, name), name


def _declared(tmp_path: Path, text: str) -> type[CommandWorker]:
    path = tmp_path / "tasky.toml"
    path.write_text(text)
    [declared] = load_workers(path, [tmp_path])
    return declared


def test_a_declared_command_worker_takes_the_class_defaults(tmp_path: Path) -> None:
    declared = _declared(
        tmp_path,
        '[[workers]]\nname = "Echo"\nargv = ["echo", "{word}"]\n'
        '[workers.params.word]\ntype = "string"\n',
    )
    for name in COMMAND_DEFAULTS:
        assert getattr(declared, name) == getattr(CommandWorker, name), name
    # A parameter's unsaid max_length is Param's.
    [max_length] = [f.default for f in dataclasses.fields(Param) if f.name == "max_length"]
    assert declared.Config.model_json_schema()["properties"]["word"]["maxLength"] == max_length


def test_what_a_config_file_says_still_wins(tmp_path: Path) -> None:
    declared = _declared(
        tmp_path,
        '[[workers]]\nname = "Count"\nargv = ["seq", "{n}"]\nmax_tasks = 3\nretries = 2\n'
        'actions = ["cancel"]\nprogress = "(?P<percent>[0-9]+)%"\n'
        '[workers.params.n]\ntype = "integer"\nmin = 1\nmax = 9\n',
    )
    assert (declared.max_tasks, declared.retries, declared.actions) == (3, 2, {"cancel"})
    assert declared.progress_pattern is not None
    assert declared.progress_pattern.pattern == "(?P<percent>[0-9]+)%"
    schema = declared.Config.model_json_schema()["properties"]["n"]
    assert (schema["minimum"], schema["maximum"]) == (1, 9)
