"""A batch's configs validated, dumped and numbered together give the answers of one at a time.

validate_configs / stored_configs (one pydantic call per batch), new_ids (one system call) and
EventHub.publish_many (one history extension) are the batch submit's shortcuts: each must answer
exactly as the per-config path does, errors and their indexes included.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Annotated, Any

import pytest
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PydanticUserError,
    SecretStr,
    ValidationError,
    field_serializer,
)

from tasky.engine.events import EventHub
from tasky.ids import is_valid_id, new_ids
from tasky.workers import strict
from tasky.workers.base import EmptyConfig
from tasky.workers.secrets import stored_config, stored_configs
from tasky.workers.strict import Multiline, validate_config, validate_configs


class Plain(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = "x"
    count: int = Field(default=1, ge=0)
    ratio: float = 0.5
    text: Annotated[str, Multiline] = ""
    where: Path = Path("a")


class Inner(BaseModel):
    label: str


class Nested(BaseModel):
    inner: Inner
    items: list[str] = []
    table: dict[str, int] = {}


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Aliased(BaseModel):
    model_config = ConfigDict(serialize_by_alias=True, populate_by_name=True)
    value: int = Field(default=0, alias="Value")


class Custom(BaseModel):
    when: str = "now"

    @field_serializer("when")
    def _upper(self, value: str) -> str:
        return value.upper()


class Secretive(BaseModel):
    user: str = "admin"
    password: SecretStr


CASES: list[tuple[type[BaseModel], list[Any]]] = [
    (EmptyConfig, [{}, {}, {}]),
    (EmptyConfig, [{}, {"x": 1}, {}, []]),
    (EmptyConfig, []),
    (Plain, [{}, {"name": "a", "count": 3, "ratio": 1.5, "text": "l1\nl2", "where": "b/c"}]),
    (Plain, [{"count": "3"}, {}, {"count": -1}, {"ratio": True}]),
    (Plain, [{}, {"name": "bad\x00"}, {"text": "tab\tok"}, {"name": "esc\x1b"}]),
    (Plain, [{"ratio": math.inf}, {}, {"ratio": math.nan}]),
    (Plain, [{"where": "nul\x00path"}, {"name": 1}]),
    (Nested, [{"inner": {"label": "ok"}, "items": ["a"], "table": {"k": 1}}]),
    (Nested, [{"inner": {"label": "a\x07"}}, {"inner": {}}, {"inner": {"label": "b"}}]),
    (Nested, [{"inner": {"label": "x"}, "table": {"bad\x01key": 1}}]),
    (Open, [{"free": "text", "n": 1.0}, {"bad\x02": 1}, {"x": ["ok", "no\x03"]}]),
    (Aliased, [{"Value": 2}, {"value": 3}, {}]),
    (Custom, [{"when": "later"}, {}]),
    (Secretive, [{"password": "s3cret"}, {"password": "p", "user": "u"}]),
    (Secretive, [{"password": "s3\x00cret"}, {}]),
    (Plain, [{"deep": [[[[1.0]]]]}, {"name": ("tuple", "is", "json")}]),
]


def one_by_one(model: type[BaseModel], configs: list[Any]) -> tuple[list[Any], dict[int, Any]]:
    valid: list[Any] = []
    invalid: dict[int, Any] = {}
    for index, config in enumerate(configs):
        try:
            valid.append(validate_config(model, config).model_dump())
        except ValidationError as exc:
            invalid[index] = exc.errors(include_url=False)
    return valid, invalid


@pytest.mark.parametrize(("model", "configs"), CASES)
def test_a_batch_validates_as_its_configs_one_by_one(
    model: type[BaseModel], configs: list[Any]
) -> None:
    instances, invalid = validate_configs(model, configs)
    assert all(type(instance) is model for instance in instances)
    got = (
        [instance.model_dump() for instance in instances],
        {index: exc.errors(include_url=False) for index, exc in invalid.items()},
    )
    assert got == one_by_one(model, configs)


@pytest.mark.parametrize(("model", "configs"), CASES)
def test_a_batch_dumps_as_its_configs_one_by_one(
    model: type[BaseModel], configs: list[Any]
) -> None:
    instances, invalid = validate_configs(model, configs)
    if invalid:
        return
    assert stored_configs(model, instances) == [stored_config(i) for i in instances]


def test_a_secret_is_stored_with_its_real_value() -> None:
    instances, _ = validate_configs(Secretive, [{"password": "s3cret"}])
    assert stored_configs(Secretive, instances) == [{"user": "admin", "password": "s3cret"}]


def test_a_valid_batch_takes_one_pydantic_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shortcut is taken: no config of a valid batch is validated on its own."""

    def one(model: type[BaseModel], data: Any) -> BaseModel:
        raise AssertionError("validated one by one")

    monkeypatch.setattr(strict, "validate_config", one)
    instances, invalid = validate_configs(Plain, [{"name": f"n{i}"} for i in range(50)])
    assert not invalid and [i.name for i in instances] == [f"n{i}" for i in range(50)]  # type: ignore[attr-defined]
    instances, invalid = validate_configs(EmptyConfig, [{}] * 50)
    assert not invalid and len(instances) == 50


def test_a_model_pydantic_cannot_build_fails_as_one_config_does() -> None:
    class Unbuilt(BaseModel):
        ref: Undefined  # type: ignore[name-defined]  # noqa: F821

    with pytest.raises(PydanticUserError) as one:
        validate_config(Unbuilt, {})
    with pytest.raises(PydanticUserError) as batch:
        validate_configs(Unbuilt, [{}])
    assert str(batch.value) == str(one.value)


def test_new_ids_are_distinct_task_ids() -> None:
    ids = new_ids(1000) + new_ids(1)
    assert len(set(ids)) == 1001
    assert all(is_valid_id(i) for i in ids)
    assert new_ids(0) == []


def test_publish_many_numbers_events_as_publish_does() -> None:
    async def run() -> None:
        one, many = EventHub(history=5), EventHub(history=5)
        q_one, q_many = one.subscribe(), many.subscribe()
        events = [{"type": "task.created", "task": f"t{i}"} for i in range(7)]
        for event in events:
            one.publish("task.created", task=event["task"])
        many.publish_many(events)
        assert many.last_id == one.last_id == 7
        assert many.since(0) == one.since(0) == list(zip(range(3, 8), events[2:], strict=True))
        assert [q_many.get_nowait() for _ in range(7)] == [q_one.get_nowait() for _ in range(7)]
        many.publish("task.status", task="t0")
        assert many.since(7) == [(8, {"type": "task.status", "task": "t0"})]

    asyncio.run(run())


def test_publish_many_drops_a_subscriber_that_cannot_keep_up() -> None:
    async def run() -> None:
        hub = EventHub(queue_size=3)
        slow = hub.subscribe()
        hub.publish_many([{"type": "e", "n": n} for n in range(5)])
        assert hub.subscribers == 0
        assert slow.get_nowait() is None  # the end marker: it reconnects with Last-Event-ID
        hub.publish_many([{"type": "e", "n": 5}])
        assert hub.last_id == 6

    asyncio.run(run())
