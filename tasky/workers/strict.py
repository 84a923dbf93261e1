"""Task configs are validated strictly: every worker, Python or declared, the same way.

- JSON types as written: ``true`` is not the number 1 and ``"100"`` is not the integer 100.
  Validation runs in pydantic's strict JSON mode, which still reads a path, an enum value or a
  date from a JSON string (strict *Python* mode would refuse those).
- Numbers are finite: ``1e400`` (infinity once parsed) and NaN are refused.
- Strings hold no control characters (C0, DEL, C1): a NUL truncates a C string (a program's
  argv) after the pattern check saw the whole text, and escape sequences drive terminals. A field
  opts in with ``Annotated[str, Multiline]`` (tab, newline, carriage return) or
  ``Annotated[str, AllowControl]`` (every control character but NUL, which no field accepts).

:func:`validate_config` is what the engine, the chain checks and the task processes call;
:func:`validate_configs` is the same for a batch's configs.
"""

from __future__ import annotations

import functools
import math
import re
import typing
from collections.abc import Iterator, Sequence
from pathlib import PurePath
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, PydanticUserError, SecretStr, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import InitErrorDetails, PydanticCustomError

from tasky.echo import shown

Loc = tuple[str | int, ...]


class _Allowance:
    """A marker in a field's ``Annotated`` metadata: which control characters it accepts.

    ``refused``: the refused ASCII characters (C0 and DEL, as a regex character class's ranges);
    ``c1``: whether C1 (U+0080..U+009F) is refused too."""

    def __init__(self, name: str, refused: str, *, c1: bool) -> None:
        self.name = name
        self.refused = re.compile(f"[{refused}\\x80-\\x9f]" if c1 else f"[{refused}]")
        self.refused_bytes = bytes(b for b in range(0x80) if self.refused.match(chr(b)))
        self.c1 = c1

    def __repr__(self) -> str:
        return self.name

    def clean(self, text: str) -> bool:
        """Whether ``text`` surely holds no refused character, answered without the regex.

        The regex tests each character in Python's regex engine, about 7 ns a character here:
        0.4 ms of the event loop for a 64 KiB config string, a third of the server's time per
        submit of such configs (py-spy). Its UTF-8 bytes answer the same question about ten times
        faster: a character below U+0080 is the same single byte in UTF-8 and no byte of a longer
        sequence is below 0x80, so the refused C0 characters and DEL are present exactly when
        their bytes are; C1 characters (U+0080..U+009F) are encoded as 0xC2 0x80..0x9F, so a text
        without the byte 0xC2 holds none (one with it, or with a lone surrogate, which UTF-8
        cannot encode, is left to the regex)."""
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:
            return False
        if len(data.translate(None, self.refused_bytes)) != len(data):
            return False
        return not (self.c1 and b"\xc2" in data)


# Refused everywhere by default: C0 (NUL..US), DEL and C1 (U+0080..U+009F).
STRICT = _Allowance("Strict", r"\x00-\x1f\x7f", c1=True)
Multiline = _Allowance("Multiline", r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f", c1=True)
AllowControl = _Allowance("AllowControl", r"\x00", c1=False)

# Ready-made field types for worker configs.
MultilineStr = Annotated[str, Multiline]
ControlStr = Annotated[str, AllowControl]


def control_character(text: str, allowance: _Allowance = STRICT) -> str | None:
    """The first refused control character of ``text`` (None if there is none)."""
    if allowance.clean(text):
        return None
    found = allowance.refused.search(text)
    return found.group(0) if found is not None else None


def validate_config(model: type[BaseModel], data: Any) -> BaseModel:
    """``data`` as an instance of ``model``; pydantic.ValidationError naming every bad field."""
    try:
        # NaN and infinity would quietly become null in JSON: refuse them before.
        _check_finite_input(data)
        raw = orjson.dumps(data)
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise _error(model, [((), "invalid_json_value", str(exc))]) from None
    instance = model.model_validate_json(raw, strict=True)
    if _holds_nothing(model):
        return instance
    problems = list(_problems(instance, (), STRICT))
    if problems:
        raise _error(model, problems)
    return instance


def validate_configs(
    model: type[BaseModel], configs: Sequence[Any]
) -> tuple[list[BaseModel], dict[int, ValidationError]]:
    """Each of ``configs`` as an instance of ``model`` and, by index, the errors of those that
    are not, exactly as :func:`validate_config` raises them (all valid: no errors).

    One pydantic call validates the whole list: one by one, 1,000 empty configs cost the event
    loop about 1.5 ms, together about 0.2 ms (measured, worker Noop). A list pydantic refuses,
    or whose instances fail the checks pydantic does not make, is validated again one config at
    a time, so that the errors name each bad index as before.
    """
    instances = _validate_together(model, configs)
    if instances is not None:
        if _holds_nothing(model):
            return instances, {}
        if not any(any(True for _ in _problems(i, (), STRICT)) for i in instances):
            return instances, {}
    valid: list[BaseModel] = []
    invalid: dict[int, ValidationError] = {}
    for index, config in enumerate(configs):
        try:
            valid.append(validate_config(model, config))
        except ValidationError as exc:
            invalid[index] = exc
    return valid, invalid


def summary(exc: ValidationError) -> str:
    """``field: message; ...`` without the input values (they may be secrets)."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '(config)'}: {err['msg']}"
        for err in exc.errors(include_url=False, include_context=False, include_input=False)
    )


def _error(model: type[BaseModel], problems: list[tuple[Loc, str, str]]) -> ValidationError:
    details: list[InitErrorDetails] = [
        {"type": PydanticCustomError(kind, message), "loc": loc, "input": None}
        for loc, kind, message in problems
    ]
    return ValidationError.from_exception_data(model.__name__, details)


def _validate_together(model: type[BaseModel], configs: Sequence[Any]) -> list[BaseModel] | None:
    """All of ``configs`` validated in one pydantic call; None if any is refused."""
    adapter = list_adapter(model)
    if adapter is None:
        return None
    try:
        # From depth -1: each config is checked from depth 0, as validate_config checks it.
        _check_finite_input(list(configs), -1)
        raw = orjson.dumps(configs)
        instances: list[BaseModel] = adapter.validate_json(raw, strict=True)
    except (TypeError, orjson.JSONEncodeError, ValidationError, PydanticUserError):
        return None  # one at a time: the same errors as ever (PydanticUserError: not defined)
    return instances


@functools.cache
def list_adapter(model: type[BaseModel]) -> TypeAdapter[list[BaseModel]] | None:
    """A validator and serializer of ``list[model]``; None if pydantic cannot build one (the
    configs are then taken one at a time)."""
    try:
        return TypeAdapter(list[model])  # type: ignore[valid-type]
    except Exception:
        return None


@functools.cache
def _holds_nothing(model: type[BaseModel]) -> bool:
    """An instance of ``model`` holds nothing :func:`_problems` looks at: no field, and no
    extra item (kept only with ``extra="allow"``)."""
    return not model.model_fields and model.model_config.get("extra") != "allow"


def _check_finite_input(value: Any, depth: int = 0) -> None:
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TypeError("numbers must be finite (no NaN or infinity)")
    elif depth < 64 and isinstance(value, dict):
        for item in value.values():
            _check_finite_input(item, depth + 1)
    elif depth < 64 and isinstance(value, list | tuple):
        for item in value:
            _check_finite_input(item, depth + 1)


def _problems(value: Any, loc: Loc, allowance: _Allowance) -> Iterator[tuple[Loc, str, str]]:
    if isinstance(value, str):
        yield from _text_problem(value, loc, allowance)
    elif isinstance(value, SecretStr):
        yield from _text_problem(value.get_secret_value(), loc, allowance)
    elif isinstance(value, float):
        if not math.isfinite(value):
            yield loc, "finite_number", "must be a finite number"
    elif isinstance(value, BaseModel):
        allowances = _field_allowances(type(value))
        for name, field_allowance in allowances.items():
            yield from _problems(getattr(value, name, None), (*loc, name), field_allowance)
        for extra, item in (value.model_extra or {}).items():
            where = (*loc, shown(extra) if control_character(extra) else extra)
            yield from _problems(extra, where, STRICT)
            yield from _problems(item, where, STRICT)
    elif isinstance(value, dict):
        for key, item in value.items():
            # A key is repeated in the error's loc: written out if it holds control characters.
            step: str | int = key if isinstance(key, int) else str(key)
            where = (*loc, shown(step) if control_character(str(step)) else step)
            yield from _problems(key, where, allowance)
            yield from _problems(item, where, allowance)
    elif isinstance(value, list | tuple | set | frozenset):
        for index, item in enumerate(value):
            yield from _problems(item, (*loc, index), allowance)
    elif isinstance(value, PurePath):
        yield from _text_problem(str(value), loc, allowance)


def _text_problem(text: str, loc: Loc, allowance: _Allowance) -> Iterator[tuple[Loc, str, str]]:
    char = control_character(text, allowance)
    if char is not None:
        yield (
            loc,
            "control_character",
            f"must not contain control characters (found U+{ord(char):04X})",
        )


@functools.cache
def _field_allowances(model: type[BaseModel]) -> dict[str, _Allowance]:
    return {name: _allowance_of(info) for name, info in model.model_fields.items()}


def _allowance_of(info: FieldInfo) -> _Allowance:
    markers = [m for m in info.metadata if isinstance(m, _Allowance)]
    markers += _markers_in(info.annotation, 0)
    if AllowControl in markers:
        return AllowControl
    if Multiline in markers:
        return Multiline
    return STRICT


def _markers_in(annotation: Any, depth: int) -> list[_Allowance]:
    """Markers anywhere in a field's type: ``list[Annotated[str, Multiline]]`` counts too."""
    if depth > 8:
        return []
    found: list[_Allowance] = []
    for arg in typing.get_args(annotation):
        if isinstance(arg, _Allowance):
            found.append(arg)
        else:
            found += _markers_in(arg, depth + 1)
    if typing.get_origin(annotation) is Annotated:
        found += [m for m in getattr(annotation, "__metadata__", ()) if isinstance(m, _Allowance)]
    return found
