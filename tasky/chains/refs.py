"""The reference syntax: ``${...}`` inside a step's config strings.

    ${params.NAME}                 a chain parameter (a path may follow: ${params.NAME.key.0})
    ${steps.STEP.result}           an earlier step's Output object (a path may follow)
    ${steps.STEP.status}           its status; also .error and .task_id
    ${chain.id}                    the chain's id; also .name, .error and .failed_step

A string that is exactly one reference takes the referenced JSON value as it is (a number stays a
number); references inside longer text are written as text (null as an empty string, objects and
arrays as JSON). ``$${`` writes a literal ``${``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

_REF = re.compile(r"(\$?)\$\{([^{}]*)\}")
_WHOLE = re.compile(r"^\$\{([^{}]*)\}$")
_SEGMENT = re.compile(r"^[A-Za-z0-9_-]+$")

STEP_FIELDS = ("result", "status", "error", "task_id")
CHAIN_FIELDS = ("id", "name", "error", "failed_step")

Loc = tuple[str | int, ...]


class RefError(Exception):
    """A reference that is malformed, or names something that does not exist."""


@dataclass(frozen=True, slots=True)
class Ref:
    text: str  # as written, with ${ }
    root: str  # params | steps | chain
    name: str  # parameter, step or chain field
    field: str | None  # for steps: result | status | error | task_id
    path: tuple[str, ...]  # keys / list indexes below the value


def parse_ref(expr: str) -> Ref:
    text = "${" + expr + "}"
    parts = expr.strip().split(".")
    if any(not _SEGMENT.match(p) for p in parts):
        raise RefError(f"{text}: write ${{params.NAME}}, ${{steps.STEP.result}} or ${{chain.id}}")
    root = parts[0]
    if root == "params" and len(parts) >= 2:
        return Ref(text, root, parts[1], None, tuple(parts[2:]))
    if root == "steps" and len(parts) >= 3:
        field = parts[2]
        if field not in STEP_FIELDS:
            raise RefError(f"{text}: a step offers {', '.join(STEP_FIELDS)}, not {field!r}")
        if field != "result" and len(parts) > 3:
            raise RefError(f"{text}: only .result can be followed by a path")
        return Ref(text, root, parts[1], field, tuple(parts[3:]))
    if root == "chain" and len(parts) == 2:
        if parts[1] not in CHAIN_FIELDS:
            raise RefError(f"{text}: the chain offers {', '.join(CHAIN_FIELDS)}")
        return Ref(text, root, parts[1], None, ())
    raise RefError(
        f"{text}: write ${{params.NAME}}, ${{steps.STEP.result}}, ${{steps.STEP.status}} "
        "or ${chain.id}"
    )


def refs_in_string(text: str) -> list[Ref]:
    return [parse_ref(m.group(2)) for m in _REF.finditer(text) if not m.group(1)]


def walk_refs(value: Any, loc: Loc = ()) -> Iterator[tuple[Loc, Ref]]:
    """Every reference in a JSON value (dict values and list items; keys are never references)."""
    if isinstance(value, str):
        for ref in refs_in_string(value):
            yield loc, ref
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from walk_refs(item, (*loc, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk_refs(item, (*loc, index))


Lookup = Callable[[Ref], Any]


def render(value: Any, lookup: Lookup, *, keep: Callable[[Ref], bool] | None = None) -> Any:
    """Replace references using ``lookup``; a string with a reference ``keep`` accepts is left as
    written (used to check configs before the values are known)."""
    if isinstance(value, str):
        return _render_string(value, lookup, keep)
    if isinstance(value, dict):
        return {k: render(v, lookup, keep=keep) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, lookup, keep=keep) for v in value]
    return value


def _render_string(text: str, lookup: Lookup, keep: Callable[[Ref], bool] | None) -> Any:
    if "${" not in text:
        return text
    if keep is not None and any(keep(ref) for ref in refs_in_string(text)):
        return text
    whole = _WHOLE.match(text)
    if whole is not None:
        return lookup(parse_ref(whole.group(1)))

    def replace(match: re.Match[str]) -> str:
        if match.group(1):  # $${ ... } is a literal ${ ... }
            return "${" + match.group(2) + "}"
        return as_text(lookup(parse_ref(match.group(2))))

    return _REF.sub(replace, text)


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def follow(ref: Ref, value: Any, what: str) -> Any:
    """Walk ``ref.path`` into ``value`` (``what`` names the value in errors)."""
    here = value
    walked: list[str] = []
    for key in ref.path:
        if isinstance(here, dict):
            if key not in here:
                keys = ", ".join(sorted(map(str, here))) or "none"
                place = what + "".join(f".{w}" for w in walked)
                raise RefError(f"{ref.text}: {place} has no key {key!r} (keys: {keys})")
            here = here[key]
        elif isinstance(here, list):
            if not key.isdigit() or int(key) >= len(here):
                place = what + "".join(f".{w}" for w in walked)
                raise RefError(f"{ref.text}: {place} is a list of {len(here)}; no item {key!r}")
            here = here[int(key)]
        else:
            place = what + "".join(f".{w}" for w in walked)
            raise RefError(f"{ref.text}: {place} is {as_text(here) or 'null'}, not an object")
        walked.append(key)
    return here
