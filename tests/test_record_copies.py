"""The fast copies of store records (tasky.store.records.shallow_copier): every field of the
original, in a new object, as dataclasses.replace would make."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from tasky.states import Status
from tasky.store.chain_records import StepRecord, copy_step
from tasky.store.records import TaskRecord, copy_task, shallow_copier


def _distinct_values(cls: type[Any]) -> dict[str, Any]:
    """A value per field that no other field has, so a field copied into the wrong place shows."""
    values: dict[str, Any] = {}
    for index, f in enumerate(dataclasses.fields(cls)):
        if f.name == "status":
            values[f.name] = Status.PAUSED
        elif f.name == "state":
            values[f.name] = "rerun"
        elif f.name in ("config", "result"):
            values[f.name] = {"field": f.name}
        elif f.name == "history":
            values[f.name] = [f"t{index}"]
        elif "str" in str(f.type):
            values[f.name] = f"{f.name}-{index}"
        else:
            values[f.name] = index + 1000
    return values


@pytest.mark.parametrize(("cls", "copy"), [(TaskRecord, copy_task), (StepRecord, copy_step)])
def test_a_copy_has_every_field_and_is_a_new_object(cls: type[Any], copy: Any) -> None:
    original = cls(**_distinct_values(cls))
    copied = copy(original)
    assert copied is not original
    assert copied == dataclasses.replace(original)
    for f in dataclasses.fields(cls):
        assert getattr(copied, f.name) is getattr(original, f.name), f.name  # shallow, as replace
    first = dataclasses.fields(cls)[0].name
    setattr(copied, first, "changed")
    assert getattr(original, first) != "changed"


def test_a_record_with_a_field_init_does_not_take_is_refused() -> None:
    """Such a field would be left out of the copy: refused when the copier is made."""

    @dataclasses.dataclass(slots=True)
    class Partly:
        a: int
        b: int = dataclasses.field(init=False, default=0)

    with pytest.raises(TypeError, match="positional"):
        shallow_copier(Partly)

    @dataclasses.dataclass(slots=True, kw_only=True)
    class KeywordsOnly:
        a: int

    with pytest.raises(TypeError, match="positional"):
        shallow_copier(KeywordsOnly)
