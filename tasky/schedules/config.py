"""Schedules from the TOML config file: its ``[schedules.NAME]`` tables.

A table holds the fields of the API's body (without ``name``, which is the table's)::

    [schedules.nightly-report]
    worker = "Report"
    config = { day = "yesterday" }
    cron = "30 2 * * *"
    timezone = "Europe/Paris"
    catch_up = "once"
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from tasky.config_file import read_config
from tasky.schedules.model import ScheduleSpec


def load_schedule_specs(paths: list[Path]) -> list[tuple[ScheduleSpec, Path]]:
    """The schedules the files declare; ValueError naming the file and schedule on a mistake."""
    found: dict[str, tuple[ScheduleSpec, Path]] = {}
    for path in paths:
        data = read_config(path)
        tables = data.get("schedules", {})
        if not isinstance(tables, dict):
            raise ValueError(f"config file {path}: 'schedules' must be a table of [schedules.NAME]")
        for name, raw in tables.items():
            where = f"config file {path}: schedules.{name}"
            if not isinstance(raw, dict) or "name" in raw:
                raise ValueError(f"{where} must be a table (its name is the table's)")
            if name in found:
                raise ValueError(f"{where} is already defined in {found[name][1]}")
            try:
                spec = ScheduleSpec.model_validate({**raw, "name": name})
            except ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc']) or 'table'}: {e['msg']}"
                    for e in exc.errors(include_url=False)
                )
                raise ValueError(f"{where}: {problems}") from None
            found[name] = (spec, path)
    return list(found.values())
