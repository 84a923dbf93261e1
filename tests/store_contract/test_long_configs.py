"""Long configs (the SQLite store keeps them out of their task's row, see
tasky.store.sqlite_tasks.CONFIG_ASIDE) read back whole through every read, whatever moves the
task made, and leave with their tasks."""

from __future__ import annotations

from typing import Any

from tasky.states import Status
from tasky.store import Store
from tests.store_contract.records import WORKER, claim, finished, outcome, stored, task

LONG: dict[str, Any] = {"text": "é漢x" * 4_000, "items": list(range(500))}
SHORT: dict[str, Any] = {"n": 1}


async def test_long_and_short_configs_read_back_through_every_read(store: Store) -> None:
    lone = await store.submit(task(config=LONG))
    batch = await store.submit_many(
        [task(config=LONG if n % 2 else SHORT, queued_at=1001.0 + n) for n in range(6)]
    )
    expected = {lone.id: LONG} | {t.id: LONG if n % 2 else SHORT for n, t in enumerate(batch)}
    for task_id, config in expected.items():
        assert (await stored(store, task_id)).config == config
    listed = (await store.list_tasks(worker=WORKER, limit=100)).tasks
    assert {t.id: t.config for t in listed} == expected
    claimed = await store.claim(WORKER, claim(limit=100), 1100.0)
    assert {t.id: t.config for t in claimed} == expected
    assert {t.id: t.config for t in await store.held_tasks()} == expected
    for t in claimed:
        assert await store.finish(t.id, t.owner or "", t.attempt, outcome(result={"ok": 1}))
    for task_id, config in expected.items():
        got = await stored(store, task_id)
        assert (got.status, got.config, got.result) == (Status.COMPLETED, config, {"ok": 1})


async def test_update_config_between_long_and_short(store: Store) -> None:
    queued = await store.submit(task(config=SHORT))
    for config in (LONG, {"text": "other" * 2_000}, SHORT, LONG):
        assert await store.update_config(queued.id, config)
        assert (await stored(store, queued.id)).config == config
    [started] = await store.claim(WORKER, claim(), 1100.0)
    assert started.config == LONG
    assert not await store.update_config(queued.id, SHORT)  # started: refused, kept
    assert (await stored(store, queued.id)).config == LONG


async def test_a_pruned_task_takes_its_long_config_along(store: Store) -> None:
    gone = await finished(store, at=2000.0, config=LONG)
    kept = await finished(store, at=9000.0, config=LONG)
    assert await store.prune_finished(5000.0, WORKER, 10) == 1
    assert await store.get(gone.id) is None
    assert (await stored(store, kept.id)).config == LONG
    # A new task after the pruned one (SQLite may hand its seq out again) has its own config.
    again = await store.submit(task(config={"text": "new" * 1_000}))
    assert (await stored(store, again.id)).config == {"text": "new" * 1_000}
