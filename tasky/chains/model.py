"""Chain definitions: the shape of a chain as users write it (JSON body or TOML table).

A chain is an ordered list of stages. A stage is one step, or a named group of steps that run in
parallel (``{"name": ..., "parallel": [steps]}``); the next stage waits for the whole group. Each
step names a worker and its config; ``when`` decides whether the stage runs, from how the chain
has gone so far; ``on_failure`` decides whether a failure stops the chain's normal path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
)

from tasky.callbacks.urls import check_url

NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,63}$"
MAX_STEPS = 20_000
# Deeper JSON is refused before anything walks it recursively (references, validation).
MAX_DEPTH = 64

When = Literal["success", "failure", "always"]
OnFailure = Literal["stop", "continue"]


class DefinitionError(Exception):
    """A chain definition that cannot run; the API answers 422 naming the step."""

    def __init__(
        self, message: str, *, step: str | None = None, fields: list[dict[str, str]] | None = None
    ) -> None:
        super().__init__(f"step {step!r}: {message}" if step else message)
        self.step = step
        self.fields = fields or []


class StepSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, description="Unique in the chain; used in references.")
    worker: str = Field(min_length=1, max_length=100)
    config: dict[str, Any] = Field(
        default_factory=dict, description="The worker's config; strings may hold ${...} references."
    )
    when: When | None = Field(
        default=None,
        description="success (default): no failure so far; failure: after a failure; always.",
    )
    on_failure: OnFailure | None = Field(
        default=None, description="Overrides the chain's on_failure for this step."
    )
    timeout: float | None = Field(default=None, gt=0, le=30 * 24 * 3600)
    retries: int | None = Field(default=None, ge=0, le=100)


class GroupSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    parallel: list[StepSpec] = Field(min_length=1, max_length=MAX_STEPS)
    when: When | None = None


def _kind(value: Any) -> str:
    if isinstance(value, dict) and "parallel" in value:
        return "group"
    if isinstance(value, GroupSpec):
        return "group"
    return "step"


Stage = Annotated[
    Annotated[StepSpec, Tag("step")] | Annotated[GroupSpec, Tag("group")],
    Discriminator(_kind),
]


class ChainSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200, description="A label for lists.")
    description: str = Field(default="", max_length=10_000)
    parameters: dict[str, Any] = Field(
        default_factory=dict, description="Parameter values (defaults, for a named definition)."
    )
    on_failure: OnFailure = "stop"
    steps: list[Stage] = Field(min_length=1, max_length=MAX_STEPS)
    result: Any = Field(
        default=None,
        description="What the chain returns (may hold references); default: the last stage's "
        "output.",
    )
    callback: str | None = Field(
        default=None,
        description="URL the finished chain's record is POSTed to, signed (docs/callbacks.md).",
    )

    @field_validator("callback")
    @classmethod
    def _callback_url(cls, value: str | None) -> str | None:
        return None if value is None else check_url(value)

    @field_validator("parameters")
    @classmethod
    def _parameter_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        bad = [k for k in value if not re.match(NAME_PATTERN, k)]
        if bad:
            raise ValueError(f"parameter names must match {NAME_PATTERN}: {', '.join(bad)}")
        return value


@dataclass(frozen=True, slots=True)
class StageInfo:
    """One stage of a parsed chain: its steps, and the rule that decides whether it runs."""

    index: int
    name: str
    when: When
    steps: tuple[StepSpec, ...]
    parallel: bool


def stages_of(spec: ChainSpec) -> list[StageInfo]:
    out = []
    for index, item in enumerate(spec.steps):
        if isinstance(item, GroupSpec):
            out.append(
                StageInfo(index, item.name, item.when or "success", tuple(item.parallel), True)
            )
        else:
            out.append(StageInfo(index, item.name, item.when or "success", (item,), False))
    return out


def step_policy(spec: ChainSpec, step: StepSpec) -> OnFailure:
    return step.on_failure or spec.on_failure


def parse_spec(raw: Any) -> ChainSpec:
    """Parse a definition's structure; errors name the step they are in."""
    if not isinstance(raw, dict):
        raise DefinitionError("a chain definition must be a JSON object with a list of steps")
    if json_depth(raw) > MAX_DEPTH:
        raise DefinitionError(f"the definition is nested more than {MAX_DEPTH} levels deep")
    try:
        spec = ChainSpec.model_validate(raw)
    except ValidationError as exc:
        raise _structure_error(exc, raw) from None
    _check_names(spec)
    return spec


def json_depth(value: Any) -> int:
    """How deeply a JSON value nests (without recursion, so any depth is measured safely)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            if depth <= MAX_DEPTH:  # no need to look further down
                children = item.values() if isinstance(item, dict) else item
                stack.extend((child, depth + 1) for child in children)
    return deepest


def _check_names(spec: ChainSpec) -> None:
    seen: set[str] = set()
    for item in spec.steps:
        names = [item.name]
        if isinstance(item, GroupSpec):
            names += [s.name for s in item.parallel]
            for inner in item.parallel:
                if inner.when is not None:
                    raise DefinitionError(
                        f"'when' belongs to its group {item.name!r}, not to a step inside it",
                        step=inner.name,
                    )
        for name in names:
            if name in seen:
                raise DefinitionError("two steps (or groups) have this name", step=name)
            seen.add(name)


def _structure_error(exc: ValidationError, raw: dict[str, Any]) -> DefinitionError:
    fields = []
    first_step: str | None = None
    for err in exc.errors(include_url=False, include_context=False, include_input=False):
        loc = list(err["loc"])
        step = _step_at(loc, raw)
        # The union tag ("step"/"group") is pydantic's bookkeeping, not a field users wrote.
        shown = [str(p) for p in loc if p not in ("step", "group")]
        fields.append(
            {"field": ".".join(shown) or "(body)", "message": err["msg"], "type": err["type"]}
        )
        if first_step is None:
            first_step = step
    summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    return DefinitionError(f"invalid chain definition: {summary}", step=first_step, fields=fields)


def _step_at(loc: list[Any], raw: dict[str, Any]) -> str | None:
    """The name (or position) of the step an error location points into."""
    if len(loc) < 2 or loc[0] != "steps" or not isinstance(loc[1], int):
        return None
    steps = raw.get("steps")
    item = steps[loc[1]] if isinstance(steps, list) and loc[1] < len(steps) else None
    label = _label(item, f"#{loc[1] + 1}")
    rest = [p for p in loc[2:] if p not in ("step", "group")]
    if len(rest) >= 2 and rest[0] == "parallel" and isinstance(rest[1], int):
        inner = item.get("parallel") if isinstance(item, dict) else None
        if isinstance(inner, list) and rest[1] < len(inner):
            return _label(inner[rest[1]], f"{label}#{rest[1] + 1}")
        return f"{label}#{rest[1] + 1}"
    return label


def _label(item: Any, fallback: str) -> str:
    if isinstance(item, dict) and isinstance(item.get("name"), str) and item["name"]:
        return str(item["name"])
    return fallback
