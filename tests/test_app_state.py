"""The application's state (tasky.api.app_state): Starlette's State, read without the failed
ordinary lookup (and its formatted AttributeError) that Starlette's own costs on every read."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.datastructures import State

from tasky.api.app import create_app
from tasky.api.app_state import AppState
from tasky.settings import Settings
from tasky.store import create_store


def test_a_value_set_is_read_without_getattr(monkeypatch: pytest.MonkeyPatch) -> None:
    state = AppState()
    state.engine = "the engine"

    def failing(self: State, key: str) -> object:
        raise AssertionError(f"__getattr__ called for {key!r}: the ordinary lookup failed first")

    # Starlette's State answers every read from __getattr__, after the ordinary lookup failed.
    monkeypatch.setattr(State, "__getattr__", failing)
    assert state.engine == "the engine"
    plain = State()
    plain.engine = "the engine"
    with pytest.raises(AssertionError, match="__getattr__ called for 'engine'"):
        _ = plain.engine


def test_it_behaves_as_starlettes_state() -> None:
    state = AppState()
    state.settings = 1
    state["registry"] = 2
    assert (state.settings, state["settings"], state.registry) == (1, 1, 2)
    state.settings = 3
    assert state.settings == 3
    del state.settings
    del state["registry"]
    with pytest.raises(AttributeError, match="'AppState' object has no attribute 'settings'"):
        _ = state.settings
    with pytest.raises(KeyError):
        _ = state["registry"]


def test_the_app_uses_it(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path), store=create_store("memory:"))
    assert isinstance(app.state, AppState)
    assert app.state is app.starlette.state
    assert isinstance(vars(app.state)["settings"], Settings)  # an ordinary attribute
