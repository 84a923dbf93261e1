"""key=value arguments typed by real worker schemas (the pydantic models' JSON Schema)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict

from tasky.cli.kv import ConfigError, describe_type, load_config_file, parse_assignments
from tasky.workers.examples.sleeper import SleeperConfig
from tests.workers_for_tests import EchoConfig, FailConfig


class Color(Enum):
    RED = "red"
    BLUE = "blue"


class Inner(BaseModel):
    depth: int = 1


class Rich(BaseModel):
    model_config = ConfigDict(extra="forbid")
    count: int = 0
    ratio: float = 1.0
    enabled: bool = False
    name: str = ""
    maybe: int | None = None
    color: Color = Color.RED
    mode: Literal["fast", "slow"] = "fast"
    tags: list[str] = []
    sizes: list[int] = []
    inner: Inner = Inner()
    anything: Any = None


def parse(model: type[BaseModel], *args: str) -> dict[str, Any]:
    return parse_assignments(list(args), model.model_json_schema(), model.__name__)


def test_values_take_the_types_of_the_schema() -> None:
    out = parse(
        Rich,
        "count=3",
        "ratio=2.5",
        "enabled=yes",
        "name=007",
        "maybe=null",
        "color=blue",
        "mode=slow",
        "tags=a,b",
        "sizes=[1, 2]",
        'inner={"depth": 4}',
        "anything=[1]",
    )
    assert out == {
        "count": 3,
        "ratio": 2.5,
        "enabled": True,
        "name": "007",  # a string field keeps its text, leading zero included
        "maybe": None,
        "color": "blue",
        "mode": "slow",
        "tags": ["a", "b"],
        "sizes": [1, 2],
        "inner": {"depth": 4},
        "anything": [1],
    }
    # The typed config is what the worker's model accepts.
    Rich.model_validate(out)


def test_numbers_booleans_and_raw_json() -> None:
    assert parse(Rich, "ratio=3") == {"ratio": 3}
    assert parse(Rich, "enabled=False", "maybe=7") == {"enabled": False, "maybe": 7}
    assert parse(Rich, "sizes=1, 2,3") == {"sizes": [1, 2, 3]}
    assert parse(Rich, "name:=12") == {"name": 12}  # := sends JSON as it is
    assert parse(SleeperConfig, "seconds=0.5") == {"seconds": 0.5}
    assert parse(EchoConfig, "value=hello", "value=42") == {"value": 42}
    assert parse(EchoConfig, "value=hello") == {"value": "hello"}
    assert parse(Rich, "name=a=b") == {"name": "a=b"}  # only the first = splits


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        ("count=three", "count: expected an integer, not 'three'"),
        ("count=1.5", "count: expected an integer, not '1.5'"),
        ("ratio=fast", "ratio: expected a number, not 'fast'"),
        ("ratio=nan", "ratio: expected a finite number, not 'nan'"),
        ("enabled=maybe", "enabled: expected true or false, not 'maybe'"),
        ("maybe=x", "maybe: expected null or an integer, not 'x'"),
        ("color=green", 'color: expected one of: "red", "blue", not \'green\''),
        ("sizes=1,x", "sizes: expected an integer"),
        ("inner=[1]", "inner: expected a JSON object"),
        ("name:={", "name: not valid JSON after ':='"),
        ("novalue", "expected key=value"),
        ("=3", "expected key=value"),
    ],
)
def test_clear_errors_for_values_that_do_not_fit(arg: str, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse(Rich, arg)
    assert message in str(exc.value)


def test_unknown_keys_are_refused_with_the_known_ones() -> None:
    with pytest.raises(ConfigError) as exc:
        parse(FailConfig, "mesage=hi")
    text = str(exc.value)
    assert "unknown key 'mesage' for FailConfig" in text
    assert "did you mean 'message'?" in text
    assert "Keys: fail_times, message" in text


def test_a_worker_without_config_takes_no_keys() -> None:
    class Empty(BaseModel):
        model_config = ConfigDict(extra="forbid")

    with pytest.raises(ConfigError, match="Empty takes no config"):
        parse(Empty, "x=1")


def test_open_schemas_take_any_key() -> None:
    class Loose(BaseModel):
        model_config = ConfigDict(extra="allow")
        n: int = 0

    assert parse(Loose, "n=2", "other=true", "text=hi") == {"n": 2, "other": True, "text": "hi"}


def test_describe_type_is_readable() -> None:
    schema = Rich.model_json_schema()
    props, defs = schema["properties"], schema["$defs"]
    assert describe_type(props["maybe"], defs) == "integer or null"
    assert describe_type(props["color"], defs) == 'one of: "red", "blue"'
    assert describe_type(props["tags"], defs) == "list of string"
    assert describe_type(props["anything"], defs) == "any JSON value"


def test_config_files(tmp_path: Path) -> None:
    (tmp_path / "c.json").write_text('{"seconds": 2}')
    (tmp_path / "c.toml").write_text("seconds = 3\n")
    (tmp_path / "list.json").write_text("[1]")
    (tmp_path / "bad.json").write_text("{")
    assert load_config_file(str(tmp_path / "c.json")) == {"seconds": 2}
    assert load_config_file(str(tmp_path / "c.toml")) == {"seconds": 3}
    assert load_config_file("-", '{"a": 1}') == {"a": 1}
    with pytest.raises(ConfigError, match="must hold an object"):
        load_config_file(str(tmp_path / "list.json"))
    with pytest.raises(ConfigError, match="is not valid"):
        load_config_file(str(tmp_path / "bad.json"))
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config_file(str(tmp_path / "missing.json"))
