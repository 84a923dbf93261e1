"""Secrets in chains: a chain parameter that feeds a secret field, or a secret written into a
step's config, is shown masked like a task's secret (``"**********"``).

A parameter is secret when a step passes it (``${params.NAME}``, whole or inside a string) to a
field its worker declares secret. The values stay stored as given: the steps need them.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from tasky.chains.refs import walk_refs
from tasky.workers.registry import WorkerRegistry
from tasky.workers.secrets import MASK, secret_fields


def _steps(spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for stage in spec.get("steps") or []:
        if not isinstance(stage, dict):
            continue
        if isinstance(stage.get("parallel"), list):
            yield from (s for s in stage["parallel"] if isinstance(s, dict))
        else:
            yield stage


def _secret_values(
    spec: dict[str, Any], registry: WorkerRegistry
) -> Iterator[tuple[dict[str, Any], str]]:
    """(step config, key) of every step config value that goes to a secret field."""
    for step in _steps(spec):
        worker = registry.get(str(step.get("worker", "")))
        config = step.get("config")
        if worker is None or not isinstance(config, dict):
            continue
        for key in secret_fields(worker.Config) & set(config):
            yield config, key


def secret_parameters(spec: dict[str, Any], registry: WorkerRegistry) -> frozenset[str]:
    """Names of the chain parameters that reach a secret field of some step."""
    return frozenset(
        ref.name
        for config, key in _secret_values(spec, registry)
        for _, ref in walk_refs(config[key])
        if ref.root == "params"
    )


def masked_parameters(values: Any, secret: frozenset[str]) -> Any:
    if not secret or not isinstance(values, dict):
        return values
    return {name: MASK if name in secret else value for name, value in values.items()}


def masked_spec(spec: dict[str, Any], registry: WorkerRegistry) -> dict[str, Any]:
    """A definition as shown: secret parameter defaults and literal secret values masked."""
    shown = copy.deepcopy(spec)
    for config, key in _secret_values(shown, registry):
        if not any(True for _ in walk_refs(config[key])):  # a reference shows no secret
            config[key] = MASK
    shown["parameters"] = masked_parameters(
        shown.get("parameters"), secret_parameters(shown, registry)
    )
    if shown["parameters"] is None:
        del shown["parameters"]
    return shown
