"""The delivery service on its own: what a start finds in the store, and the settings' bounds."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from tasky.callbacks.delivery import Deliverer
from tasky.cli.serve import read_token_file
from tasky.ids import new_id
from tasky.settings import Settings
from tasky.store import CallbackRecord, SqliteStore, Store
from tasky.store.postgres import PostgresStore
from tests.callback_receiver import SECRET, Receiver, receiver, verified
from tests.pg import emptied_shared_schema

__all__ = ["receiver"]  # the fixture, shared


async def test_start_arms_what_finished_while_down_and_drops_orphans(
    tmp_path: Path, receiver: Receiver
) -> None:
    store = SqliteStore(tmp_path / "tasky.db")
    await store.open()
    finished, running, gone = new_id(), new_id(), new_id()
    for target in (finished, running, gone):
        await store.add_callback(CallbackRecord("task", target, receiver.url(), 1.0))
    states = {finished: True, running: False, gone: None}

    async def is_finished(kind: str, target_id: str) -> bool | None:
        return states[target_id]

    async def render(kind: str, target_id: str) -> dict[str, Any] | None:
        return {"TaskId": target_id, "Status": "Completed"}

    settings = Settings(
        data_dir=tmp_path,
        callback_secret=SECRET,
        callback_backoff=0.1,
        outbound_allow=["127.0.0.2/32"],
    )
    deliverer = Deliverer(store, settings, render)
    try:
        await deliverer.start(is_finished)
        found = await delivered(store, finished)
        assert len(found.attempts) == 1 and len(receiver.calls) == 1
        assert verified(*receiver.calls[0]) and b'"Completed"' in receiver.calls[0][1]
        assert await store.get_callback("task", gone) is None  # its task was never created
        assert await store.waiting_callbacks() == [("task", running)]
        # The running one goes out once it finishes, not before.
        deliverer.finished("task", running)
        await delivered(store, running)
        deliverer.finished("task", running)  # a second finish (a re-run) sends nothing more
        await asyncio.sleep(0.3)
        assert len(receiver.calls) == 2
    finally:
        await deliverer.stop()
        await store.close()


async def test_a_slow_receiver_times_out_as_one_failed_attempt(
    tmp_path: Path, receiver: Receiver
) -> None:
    receiver.delay = 1.5
    store = SqliteStore(tmp_path / "tasky.db")
    await store.open()
    target = new_id()
    await store.add_callback(CallbackRecord("task", target, receiver.url(), 1.0))

    async def render(kind: str, target_id: str) -> dict[str, Any] | None:
        return {"TaskId": target_id}

    async def is_finished(kind: str, target_id: str) -> bool | None:
        return True

    settings = Settings(
        data_dir=tmp_path,
        callback_secret=SECRET,
        callback_attempts=1,
        callback_timeout=0.3,
        outbound_allow=["127.0.0.2/32"],
    )
    deliverer = Deliverer(store, settings, render)
    try:
        await deliverer.start(is_finished)
        deadline = time.monotonic() + 10
        while (found := await store.get_callback("task", target)) is None or not found.attempts:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        assert found.state == "failed"
        assert [(a.status_code, a.error) for a in found.attempts] == [
            (None, "no answer from 127.0.0.2 in time")
        ]
    finally:
        await deliverer.stop()
        await store.close()


async def delivered(store: Store, target_id: str) -> CallbackRecord:
    deadline = time.monotonic() + 10
    while True:
        found = await store.get_callback("task", target_id)
        if found is not None and found.state == "delivered":
            return found
        assert time.monotonic() < deadline, f"not delivered: {found}"
        await asyncio.sleep(0.05)


@pytest.mark.postgres
async def test_two_nodes_deliver_each_callback_once(tmp_path: Path, receiver: Receiver) -> None:
    """Two nodes' deliverers on one database, polling at once: each due callback is claimed by
    one of them (a slow receiver keeps every delivery in flight across the other's polls)."""
    receiver.delay = 0.3
    url = emptied_shared_schema()
    stores = [PostgresStore(url), PostgresStore(url)]
    for store in stores:
        await store.open()
    targets = [new_id() for _ in range(12)]
    for target in targets:
        await stores[0].add_callback(CallbackRecord("task", target, receiver.url(), 1.0))
        assert await stores[0].arm_callback("task", target, 1.0)

    async def render(kind: str, target_id: str) -> dict[str, Any] | None:
        return {"TaskId": target_id, "Status": "Completed"}

    async def is_finished(kind: str, target_id: str) -> bool | None:
        return True

    settings = Settings(
        data_dir=tmp_path,
        callback_secret=SECRET,
        callback_backoff=0.05,
        outbound_allow=["127.0.0.2/32"],
    )
    deliverers = [Deliverer(store, settings, render) for store in stores]
    try:
        await asyncio.gather(*(d.start(is_finished) for d in deliverers))
        for target in targets:
            found = await delivered(stores[1], target)
            assert len(found.attempts) == 1
    finally:
        for deliverer in deliverers:
            await deliverer.stop()
        for store in stores:
            await store.close()
    sent = sorted(headers["tasky-delivery"] for headers, _ in receiver.calls)
    assert sent == sorted(f"task-{target}" for target in targets)


@pytest.mark.parametrize(
    "bad",
    [{"callback_attempts": 0}, {"callback_backoff": 0.0}, {"callback_timeout": -1.0}],
)
def test_callback_settings_are_bounded(tmp_path: Path, bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="--callback-"):
        Settings(data_dir=tmp_path / "data", roots=[tmp_path / "files"], **bad).check()


def test_secret_file_must_be_private(tmp_path: Path) -> None:
    path = tmp_path / "callback.secret"
    path.write_text("s3cret-value\n")
    path.chmod(0o644)
    with pytest.raises(ValueError, match=r"the callback secret file .* chmod 600"):
        read_token_file(path, "callback secret")
    path.chmod(0o600)
    assert read_token_file(path, "callback secret") == "s3cret-value"


def test_secret_is_not_in_the_settings_repr(tmp_path: Path) -> None:
    assert "cb-secret" not in repr(Settings(callback_secret="cb-secret"))
