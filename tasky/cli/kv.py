"""``key=value`` arguments typed by a worker's JSON Schema, so ``seconds=5`` sends the number 5.

``key:=JSON`` passes a raw JSON value (as in HTTPie). Everything the schema cannot decide (a value
that fits, a field constraint) is left to the server, which answers with per-field errors.
"""

from __future__ import annotations

import difflib
import json
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

Schema = dict[str, Any]

_TRUE = {"true", "yes", "on", "1", "y"}
_FALSE = {"false", "no", "off", "0", "n"}
_NULL = {"null", "none"}


class ConfigError(ValueError):
    """A key=value argument or config file that cannot become the worker's config."""


def _resolve(node: Any, defs: Schema) -> Schema:
    """Follow ``$ref`` into ``$defs`` (pydantic puts nested models and enums there)."""
    seen = 0
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and seen < 20:
        name = node["$ref"].rsplit("/", 1)[-1]
        node = {**defs.get(name, {}), **{k: v for k, v in node.items() if k != "$ref"}}
        seen += 1
    return node if isinstance(node, dict) else {}


def describe_type(node: Any, defs: Schema) -> str:
    """A short readable type: ``integer``, ``number or null``, ``one of: a, b``."""
    node = _resolve(node, defs)
    if "enum" in node:
        return "one of: " + ", ".join(json.dumps(v) for v in node["enum"])
    if "const" in node:
        return json.dumps(node["const"])
    options = node.get("anyOf") or node.get("oneOf")
    if isinstance(options, list):
        return " or ".join(describe_type(o, defs) for o in options)
    kind = node.get("type")
    if isinstance(kind, list):
        return " or ".join(str(k) for k in kind)
    if kind == "array":
        items = node.get("items")
        return f"list of {describe_type(items, defs)}" if items else "list"
    return str(kind) if kind else "any JSON value"


def _variants(node: Schema, defs: Schema) -> list[Schema]:
    options = node.get("anyOf") or node.get("oneOf")
    if isinstance(options, list):
        return [_resolve(o, defs) for o in options]
    kind = node.get("type")
    if isinstance(kind, list):
        return [{**node, "type": k} for k in kind]
    return [node]


def _is_integer(text: str) -> bool:
    # ASCII digits only: str.isdigit accepts "²", which int() refuses.
    digits = text.lstrip("+-")
    return digits.isascii() and digits.isdigit()


def _coerce_one(raw: str, node: Schema, defs: Schema) -> Any:
    """The value of ``raw`` for one schema variant; ValueError when it does not fit."""
    if "enum" in node:
        for choice in node["enum"]:
            if raw == choice or raw == json.dumps(choice) or str(choice).lower() == raw.lower():
                return choice
        raise ValueError(describe_type(node, defs))
    if "const" in node:
        if raw in (node["const"], json.dumps(node["const"])):
            return node["const"]
        raise ValueError(describe_type(node, defs))
    kind = node.get("type")
    if kind == "string":
        return raw
    if kind == "integer":
        text = raw.strip()
        if _is_integer(text):
            return int(text)
        raise ValueError("an integer")
    if kind == "number":
        text = raw.strip()
        if _is_integer(text):
            return int(text)
        try:
            value = float(text)
        except ValueError:
            raise ValueError("a number") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("a finite number")
        return value
    if kind == "boolean":
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise ValueError("true or false")
    if kind == "null":
        if raw.lower() in _NULL:
            return None
        raise ValueError("null")
    if kind == "array":
        return _coerce_array(raw, node, defs)
    if kind == "object":
        value = _json(raw)
        if isinstance(value, dict):
            return value
        raise ValueError('a JSON object such as {"a": 1}')
    # No type (Any): JSON when it parses, otherwise the text itself.
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _coerce_array(raw: str, node: Schema, defs: Schema) -> list[Any]:
    if raw.lstrip().startswith("["):
        value = _json(raw)
        if isinstance(value, list):
            return value
        raise ValueError("a JSON list")
    # a,b,c: each item typed by the items schema.
    items = _resolve(node.get("items", {}), defs)
    if raw == "":
        return []
    return [coerce_value(part.strip(), items, defs) for part in raw.split(",")]


def _json(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"valid JSON ({exc})") from None


# Try the strictest readings first: "1" is an integer before it is a string.
_ORDER = {"null": 0, "boolean": 1, "integer": 2, "number": 3, "array": 4, "object": 5, "string": 9}


def coerce_value(raw: str, node: Any, defs: Schema) -> Any:
    resolved = _resolve(node, defs)
    variants = sorted(
        _variants(resolved, defs),
        key=lambda v: _ORDER.get(str(v.get("type")), 6 if "enum" in v or "const" in v else 8),
    )
    wanted: list[str] = []
    for variant in variants:
        try:
            return _coerce_one(raw, variant, defs)
        except ValueError as exc:
            wanted.append(str(exc))
    raise ValueError(" or ".join(dict.fromkeys(wanted)))


def _split(arg: str) -> tuple[str, str, bool]:
    """``key=value`` -> (key, value, False); ``key:=json`` -> (key, json, True)."""
    eq = arg.find("=")
    if eq <= 0:
        raise ConfigError(f"expected key=value (or key:=JSON), got {arg!r}")
    if arg[eq - 1] == ":" and eq > 1:
        return arg[: eq - 1], arg[eq + 1 :], True
    return arg[:eq], arg[eq + 1 :], False


def _unknown_key(key: str, known: Iterable[str], worker: str) -> ConfigError:
    names = sorted(known)
    if not names:
        return ConfigError(f"{worker} takes no config, but {key!r} was given")
    close = difflib.get_close_matches(key, names, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return ConfigError(f"unknown key {key!r} for {worker}{hint} Keys: {', '.join(names)}")


def parse_assignments(args: list[str], schema: Schema, worker: str) -> dict[str, Any]:
    """Turn ``key=value`` arguments into config entries typed by ``schema`` (JSON Schema)."""
    properties: Schema = schema.get("properties") or {}
    defs: Schema = schema.get("$defs") or {}
    extra = schema.get("additionalProperties")
    # Unknown keys are an error unless the schema takes any key (no declared properties and
    # additionalProperties not false, or additionalProperties given as a schema or true).
    open_schema = extra is True or isinstance(extra, dict) or (not properties and extra is None)
    out: dict[str, Any] = {}
    for arg in args:
        key, raw, is_json = _split(arg)
        node = properties.get(key)
        if node is None:
            if not open_schema:
                raise _unknown_key(key, properties, worker)
            node = extra if isinstance(extra, dict) else {}
        if is_json:
            try:
                out[key] = json.loads(raw)
            except ValueError as exc:
                raise ConfigError(f"{key}: not valid JSON after ':=' ({exc})") from None
            continue
        try:
            out[key] = coerce_value(raw, node, defs)
        except ValueError as exc:
            raise ConfigError(f"{key}: expected {exc}, not {raw!r}") from None
    return out


def load_config_file(path: str, stdin_text: str | None = None) -> dict[str, Any]:
    """A config from a JSON or TOML file (``-`` reads JSON from standard input)."""
    try:
        if path == "-":
            text = stdin_text if stdin_text is not None else ""
            value: Any = json.loads(text) if text.strip() else {}
        elif path.endswith(".toml"):
            value = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        else:
            value = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid: {exc}") from None
    if not isinstance(value, dict):
        raise ConfigError(f"config file {path} must hold an object (key: value pairs)")
    return value
