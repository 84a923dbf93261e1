"""The fixture of the tests of the SQLite store alone: an open store on temp data, closed after
the test. A test module takes it by name: ``store = sqlite_store``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tasky.store.sqlite import SqliteStore


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "tasky.db")
    await s.open()
    yield s
    await s.close()
