"""Checking a chain definition before anything is created.

Everything that can be known before the chain runs is checked here, so a bad chain is refused
whole (422 naming the step) and never half-started: unknown workers, step configs the worker
would reject, malformed references, references to parameters that are not declared or to steps
that do not run earlier (a cycle among references is reported as such).

A config value that holds a reference to a later-known value (an earlier step's result, or a
parameter of a definition saved without values) cannot be checked yet: errors at that place are
ignored now and surface when the step starts, as that step's failure.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from tasky.chains.model import ChainSpec, DefinitionError, StageInfo, parse_spec, stages_of
from tasky.chains.refs import Loc, Ref, RefError, follow, render, walk_refs
from tasky.echo import clip
from tasky.workers.registry import WorkerRegistry
from tasky.workers.strict import validate_config


def check_definition(
    raw: Any, registry: WorkerRegistry, *, parameters: dict[str, Any] | None
) -> ChainSpec:
    """Parse and check ``raw``; returns the spec with canonical worker names.

    ``parameters`` are the values the chain will run with, or None when they are not known yet
    (a named definition being saved): then references to parameters are checked by name only.
    """
    spec = parse_spec(raw)
    stages = stages_of(spec)
    declared = set(spec.parameters if parameters is None else parameters)
    stage_of = {step.name: stage.index for stage in stages for step in stage.steps}
    groups = {stage.name for stage in stages if stage.parallel}
    edges: dict[str, list[str]] = {}
    for stage in stages:
        for step in stage.steps:
            worker = registry.get(step.worker)
            if worker is None:
                known = ", ".join(registry.names()) or "(none)"
                raise DefinitionError(
                    f"unknown worker {step.worker!r}; workers: {known}", step=step.name
                )
            step.worker = worker.name
            refs = _refs_of(step.config, step.name)
            for _, ref in refs:
                _check_target(ref, step.name, declared, stage_of, groups)
            edges[step.name] = [r.name for _, r in refs if r.root == "steps"]
    _check_order(stages, stage_of, edges)
    for _, ref in _refs_of(spec.result, None, what="result"):
        _check_target(ref, None, declared, stage_of, groups)
    for stage in stages:
        for step in stage.steps:
            _check_config(step.name, step.worker, step.config, registry, parameters)
    return spec


def _refs_of(value: Any, step: str | None, what: str = "config") -> list[tuple[Loc, Ref]]:
    try:
        return list(walk_refs(value))
    except RefError as exc:
        raise DefinitionError(f"bad reference in its {what}: {exc}", step=step) from None


def _check_target(
    ref: Ref, step: str | None, declared: set[str], stage_of: dict[str, int], groups: set[str]
) -> None:
    if ref.root == "params" and ref.name not in declared:
        known = ", ".join(sorted(declared)) or "none"
        raise DefinitionError(
            f"{ref.text} names a parameter the chain does not declare (parameters: {known})",
            step=step,
        )
    if ref.root == "steps" and ref.name not in stage_of:
        hint = " (a group; name one of its steps)" if ref.name in groups else ""
        raise DefinitionError(f"{ref.text} names no step of this chain{hint}", step=step)


def _check_order(
    stages: list[StageInfo], stage_of: dict[str, int], edges: dict[str, list[str]]
) -> None:
    """References must point to steps of earlier stages; a loop among them is named a cycle."""
    cycle = _find_cycle(edges)
    if cycle:
        raise DefinitionError("its references form a cycle: " + " -> ".join(cycle), step=cycle[0])
    for stage in stages:
        for step in stage.steps:
            for target in edges[step.name]:
                if stage_of[target] >= stage.index:
                    when = "in parallel with it" if stage_of[target] == stage.index else "later"
                    raise DefinitionError(
                        f"refers to step {target!r}, which runs {when}; a step can only use "
                        "the results of steps before it",
                        step=step.name,
                    )


def _find_cycle(edges: dict[str, list[str]]) -> list[str]:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in edges.get(node, []):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return []

    for node in edges:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []


def _check_config(
    step: str,
    worker_name: str,
    config: dict[str, Any],
    registry: WorkerRegistry,
    parameters: dict[str, Any] | None,
) -> None:
    worker = registry.get(worker_name)
    assert worker is not None  # checked by the caller

    def later(ref: Ref) -> bool:
        return ref.root != "params" or parameters is None

    def lookup(ref: Ref) -> Any:
        assert parameters is not None
        return follow(ref, parameters[ref.name], f"parameter {ref.name}")

    unknown_yet = [loc for loc, ref in walk_refs(config) if later(ref)]
    try:
        rendered = render(config, lookup, keep=later)
    except RefError as exc:
        raise DefinitionError(str(exc), step=step) from None
    try:
        validate_config(worker.Config, rendered)
    except ValidationError as exc:
        fields = [
            {
                "field": clip(".".join(str(p) for p in err["loc"]) or "(config)", 100),
                "message": clip(err["msg"], 300),
                "type": err["type"],
            }
            for err in exc.errors(include_url=False, include_context=False, include_input=False)
            if not any(tuple(err["loc"][: len(loc)]) == loc for loc in unknown_yet)
        ][:20]  # as many as a task's 422 names
        if fields:
            summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
            raise DefinitionError(
                f"invalid config for worker {worker.name}: {summary}", step=step, fields=fields
            ) from None
