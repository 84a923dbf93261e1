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
    required = table.get("required", "default" not in table)
    path_kind = table.get("kind", "any")
    if path_kind not in ("any", "file", "dir"):
        raise ConfigError(f"{where}: kind must be any, file or dir")
    return Param(
        name=name,
        type=kind,
        description=table.get("description", ""),
        default=table.get("default"),
        required=required,
        pattern=table.get("pattern"),
        min_length=table.get("min_length"),
        max_length=table.get("max_length", 4096),
        allow_dash=table.get("allow_dash", False),
        minimum=table.get("min"),
        maximum=table.get("max"),
        values=tuple(values),
        must_exist=table.get("must_exist", True),
        kind=path_kind,
        flag=table.get("flag"),
        allow_control=table.get("allow_control", False),
        allow_negative=table.get("allow_negative", False),
        secret=table.get("secret", False),
        env=table.get("env"),
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
    try:
        return make_command_worker(
            name=table["name"],
            argv=table["argv"],
            params=[p for p in params if p is not None],
            roots=roots,
            description=table.get("description", ""),
            usage=table.get("usage", ""),
            cwd=(base / cwd).resolve() if cwd is not None else None,
            env=env,
            output=table.get("output", "text"),
            stdout_tail=table.get("stdout_tail", 20),
            success_codes=table.get("success_codes", [0]),
            progress_pattern=table.get("progress"),
            timeout=table.get("timeout"),
            max_tasks=table.get("max_tasks", 10),
            max_queued=table.get("max_queued"),
            retention_days=table.get("retention_days"),
            retries=table.get("retries", 0),
            kill_grace=table.get("kill_grace", 5.0),
            idempotent=table.get("idempotent", False),
            actions=table.get("actions", ["cancel", "pause", "resume"]),
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
