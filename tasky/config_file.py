"""Workers declared in a TOML file (``tasky serve --config tasky.toml``): commands, no Python.

Each ``[[workers]]`` table declares one command worker; its ``[workers.params.NAME]`` tables are
the typed parameters that form the worker's config. See docs/execution.md for the format and
tasky.example.toml for a complete example. Mistakes are reported with the file, the worker and
the key, before the server listens.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tasky.workers.command import PARAM_TYPES, CommandWorker, Param, make_command_worker

_WORKER_KEYS = {
    "name": str,
    "description": str,
    "usage": str,
    "argv": list,
    "cwd": str,
    "env": dict,
    "timeout": (int, float),
    "max_tasks": int,
    "max_queued": int,
    "retention_days": (int, float),
    "retries": int,
    "kill_grace": (int, float),
    "idempotent": bool,
    "output": str,
    "stdout_tail": int,
    "success_codes": list,
    "progress": str,
    "actions": list,
    "params": dict,
}
# Worker keys handed to make_command_worker as they are (name, argv, cwd, env and params are
# read first; "progress" is its progress_pattern).
_PASSED_ON = (
    "description",
    "usage",
    "output",
    "stdout_tail",
    "success_codes",
    "timeout",
    "max_tasks",
    "max_queued",
    "retention_days",
    "retries",
    "kill_grace",
    "idempotent",
    "actions",
)
# Parameter keys handed to Param as they are, and those Param spells otherwise.
_PARAM_PASSED_ON = (
    "description",
    "default",
    "pattern",
    "min_length",
    "max_length",
    "allow_dash",
    "must_exist",
    "kind",
    "flag",
    "allow_control",
    "allow_negative",
    "secret",
    "env",
)
_PARAM_RENAMED = {"min": "minimum", "max": "maximum"}
_PARAM_KEYS = {
    "type": str,
    "description": str,
    "default": (str, int, float, bool),
    "required": bool,
    "pattern": str,
    "min_length": int,
    "max_length": int,
    "allow_dash": bool,
    "min": (int, float),
    "max": (int, float),
    "values": list,
    "must_exist": bool,
    "kind": str,
    "flag": str,
    "allow_control": bool,
    "allow_negative": bool,
    "secret": bool,
    "env": str,
}


class ConfigError(ValueError):
    """The TOML file declaring workers is invalid."""


def _check_keys(table: Mapping[str, Any], allowed: Mapping[str, Any], where: str) -> None:
    for key, value in table.items():
        if key not in allowed:
            raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(allowed)})")
        kind = allowed[key]
        # bool is an int in Python, but `timeout = true` is a mistake, not one second.
        if isinstance(value, bool) and kind is not bool and bool not in _as_tuple(kind):
            raise ConfigError(f"{where}: {key} has the wrong type (bool)")
        if not isinstance(value, kind):
            raise ConfigError(f"{where}: {key} has the wrong type ({type(value).__name__})")


def _as_tuple(kind: Any) -> tuple[Any, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _param(name: str, table: Mapping[str, Any], where: str) -> Param:
    _check_keys(table, _PARAM_KEYS, where)
    kind = table.get("type")
    if kind not in PARAM_TYPES:
        raise ConfigError(f"{where}: type must be one of {', '.join(PARAM_TYPES)}, not {kind!r}")
    values = table.get("values", [])
    if not all(isinstance(v, str) for v in values):
        raise ConfigError(f"{where}: values must be strings")
    if table.get("kind", "any") not in ("any", "file", "dir"):
        raise ConfigError(f"{where}: kind must be any, file or dir")
    # A key the table leaves out keeps Param's default: no second copy here.
    given = {key: table[key] for key in _PARAM_PASSED_ON if key in table}
    given.update({field: table[key] for key, field in _PARAM_RENAMED.items() if key in table})
    return Param(
        name=name,
        type=kind,
        # Without a default, a parameter must be given.
        required=table.get("required", "default" not in table),
        values=tuple(values),
        **given,
    )


def _worker(table: Mapping[str, Any], where: str, base: Path, roots: Sequence[Path]) -> Any:
    _check_keys(table, _WORKER_KEYS, where)
    for key in ("name", "argv"):
        if key not in table:
            raise ConfigError(f"{where}: {key} is required")
    where = f"{where} ({table['name']})"
    params = [
        _param(name, spec, f"{where}: params.{name}") if isinstance(spec, dict) else None
        for name, spec in table.get("params", {}).items()
    ]
    if None in params:
        raise ConfigError(f"{where}: each params entry must be a table ([workers.params.NAME])")
    env = table.get("env", {})
    if not all(isinstance(v, str) for v in env.values()):
        raise ConfigError(f"{where}: env values must be strings")
    cwd = table.get("cwd")
    # A key the table leaves out keeps make_command_worker's default: no second copy here.
    given = {key: table[key] for key in _PASSED_ON if key in table}
    if "progress" in table:
        given["progress_pattern"] = table["progress"]
    try:
        return make_command_worker(
            name=table["name"],
            argv=table["argv"],
            params=[p for p in params if p is not None],
            roots=roots,
            cwd=(base / cwd).resolve() if cwd is not None else None,
            env=env,
            **given,
        )
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def read_config(path: Path) -> dict[str, Any]:
    """A config file's TOML, for each part that reads its own tables (workers, chains,
    schedules); ConfigError (a ValueError) naming the file if it cannot be read or parsed."""
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def load_workers(path: Path, roots: Sequence[Path]) -> list[type[CommandWorker]]:
    """The command workers a TOML file declares; ConfigError (a ValueError) if it is invalid."""
    data = read_config(path)
    # [chains.NAME] and [schedules.NAME] tables are read by tasky.chains and tasky.schedules.
    unknown = set(data) - {"workers", "chains", "schedules"}
    if unknown:
        raise ConfigError(
            f"{path}: unknown top-level keys {sorted(unknown)} "
            "(expected [[workers]], [chains.NAME] or [schedules.NAME])"
        )
    tables = data.get("workers", [])
    if not isinstance(tables, list) or (not tables and not {"chains", "schedules"} & set(data)):
        raise ConfigError(f"{path}: declares no [[workers]]")
    base = path.resolve().parent
    return [_worker(table, f"{path}: workers[{i}]", base, roots) for i, table in enumerate(tables)]
