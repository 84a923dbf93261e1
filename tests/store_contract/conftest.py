"""Fixtures of the contract: a store of every kind, or of every kind with a capability."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tasky.store import Store
from tests.store_contract.backends import FACTORIES, StoreFactory


async def _factory(name: str, scratch: Path) -> StoreFactory:
    factory = FACTORIES[name](scratch)
    await factory.reset()
    return factory


@pytest.fixture(params=sorted(FACTORIES))
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    return await _factory(request.param, tmp_path)


@pytest.fixture(params=sorted(name for name, f in FACTORIES.items() if f.durable))
async def durable_backend(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    return await _factory(request.param, tmp_path)


@pytest.fixture(params=sorted(name for name, f in FACTORIES.items() if f.exclusive_lock))
async def locking_backend(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    return await _factory(request.param, tmp_path)


@pytest.fixture(params=sorted(name for name, f in FACTORIES.items() if f.shared))
async def shared_backend(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    return await _factory(request.param, tmp_path)


@pytest.fixture
async def store(backend: StoreFactory) -> AsyncIterator[Store]:
    opened = await backend.open()
    yield opened
    await opened.close()
