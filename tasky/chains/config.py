"""Named chain definitions from the TOML config file: its ``[chains.NAME]`` tables.

The same file declares workers (read elsewhere); this loader reads only the ``chains`` table, so
the two readers stay independent. A definition looks exactly like the JSON body of
``POST /tasky/v1/chains``::

    [chains.backup]
    parameters = { source = "data.csv", copy = "backup/data.csv" }

    [[chains.backup.steps]]
    name = "copy"
    worker = "CopyFile"
    config = { source = "${params.source}", destination = "${params.copy}" }
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tasky.config_file import read_config

DEFINITION_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"


def load_chain_tables(paths: list[Path]) -> dict[str, tuple[dict[str, Any], Path]]:
    """Raw definitions by name, with the file each came from. Raises ValueError on a file that
    cannot be read, a malformed table or a name defined twice."""
    found: dict[str, tuple[dict[str, Any], Path]] = {}
    for path in paths:
        data = read_config(path)
        chains = data.get("chains", {})
        if not isinstance(chains, dict):
            raise ValueError(f"config file {path}: 'chains' must be a table of [chains.NAME]")
        for name, raw in chains.items():
            if not re.fullmatch(DEFINITION_NAME, name):
                raise ValueError(f"config file {path}: chain name {name!r} is not allowed")
            if not isinstance(raw, dict):
                raise ValueError(f"config file {path}: chains.{name} must be a table")
            if name in found:
                raise ValueError(
                    f"config file {path}: chain {name!r} is already defined in {found[name][1]}"
                )
            found[name] = (raw, path)
    return found
