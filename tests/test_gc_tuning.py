"""The server sets the garbage collector for serving once start-up is done (tasky.gc_tuning)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from typing import Any

import pytest

from tasky import server
from tasky.gc_tuning import YOUNG_THRESHOLD, tune_for_serving
from tasky.settings import Settings
from tasky.store import Store
from tasky.store import create_store as create


@pytest.fixture
def gc_state() -> Iterator[None]:
    """Put the collector back as it was: other tests run in this process."""
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("gc_state")
def test_tuning_freezes_what_exists_and_raises_the_young_threshold() -> None:
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    before = ["made before the tuning"]
    tune_for_serving()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (YOUNG_THRESHOLD, 10, 10)
    assert all(o is not before for o in gc.get_objects())  # frozen: no generation holds it


@pytest.mark.usefixtures("gc_state")
def test_serve_tunes_the_collector_before_serving(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    class NotServing:
        def __init__(self, *args: Any) -> None:
            pass

        def run(self, sockets: Any) -> None:
            seen["frozen"] = gc.get_freeze_count()
            seen["threshold"] = gc.get_threshold()

    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    monkeypatch.setattr(server, "GracefulServer", NotServing)
    stores: list[Store] = []

    def create_store(url: str) -> Store:
        stores.append(create(url))
        return stores[-1]

    monkeypatch.setattr(server, "configure_logging", lambda *args: None)
    monkeypatch.setattr(server, "create_store", create_store)
    settings.port = 0
    try:
        server.serve(settings)
    finally:
        for store in stores:
            asyncio.run(store.close())  # its lock file: the server's shutdown would close it
    assert seen["frozen"] > 0
    assert seen["threshold"] == (YOUNG_THRESHOLD, 10, 10)
