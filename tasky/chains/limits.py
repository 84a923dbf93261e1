"""Size caps for chains, checked before anything is parsed further or created.

The request body limit alone (1 MiB by default) let every chain carry a megabyte of parameters,
stored with the chain and copied into its steps' configs; these caps are smaller and specific:
413 for bytes, 422 for too many steps.
"""

from __future__ import annotations

from typing import Any

import orjson

from tasky.http.responses import ApiError
from tasky.settings import Settings


def _size(value: Any) -> int:
    return len(orjson.dumps(value))


def check_parameters(values: Any, settings: Settings) -> None:
    limit = settings.max_chain_params_bytes
    if values is not None and (size := _size(values)) > limit:
        raise ApiError(413, f"the chain's parameters take {size} bytes; the limit is {limit}")


def check_definition_size(raw: Any, settings: Settings) -> None:
    """``raw``: a definition; a ``parameters`` member is measured by :func:`check_parameters`."""
    if not isinstance(raw, dict):
        return  # the definition check explains what is wrong with it
    definition = {k: v for k, v in raw.items() if k != "parameters"}
    limit = settings.max_chain_definition_bytes
    if (size := _size(definition)) > limit:
        raise ApiError(413, f"the chain definition takes {size} bytes; the limit is {limit}")
    check_parameters(raw.get("parameters"), settings)
    steps = count_steps(raw)
    if steps > settings.max_chain_steps:
        raise ApiError(
            422,
            f"the chain has {steps} steps; the limit is {settings.max_chain_steps}",
            Fields=[],
        )


def count_steps(raw: dict[str, Any]) -> int:
    stages = raw.get("steps")
    if not isinstance(stages, list):
        return 0
    return sum(
        len(stage["parallel"])
        if isinstance(stage, dict) and isinstance(stage.get("parallel"), list)
        else 1
        for stage in stages
    )
