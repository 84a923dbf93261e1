"""Listings, logs, progress, children, queue age and the writer's own statistics."""

from __future__ import annotations

import asyncio

from tasky.ids import new_id
from tasky.states import Status
from tasky.store import Store
from tasky.store.records import ChildRecord
from tests.store_contract.records import claim, running, stored, task


async def test_list_filters_order_and_cursor(store: Store) -> None:
    a = [await store.submit(task(worker="A")) for _ in range(5)]
    b = [await store.submit(task(worker="B")) for _ in range(3)]
    await store.claim("B", claim(), 1001.0)
    page = await store.list_tasks(worker="A", limit=2)
    ids = [t.id for t in page.tasks]
    while page.next_cursor is not None:
        page = await store.list_tasks(worker="A", limit=2, cursor=page.next_cursor)
        ids += [t.id for t in page.tasks]
    assert ids == [t.id for t in a]
    running_now = await store.list_tasks(status=Status.RUNNING)
    assert [t.id for t in running_now.tasks] == [t.id for t in b]
    newest = await store.list_tasks(descending=True, limit=3)
    assert [t.id for t in newest.tasks] == [t.id for t in reversed(b)]
    assert newest.next_cursor is not None
    older = await store.list_tasks(descending=True, limit=10, cursor=newest.next_cursor)
    assert [t.id for t in older.tasks] == [t.id for t in reversed(a)]
    assert older.next_cursor is None
    both = await store.list_tasks(worker="B", status=Status.QUEUED)
    assert both.tasks == [] and both.next_cursor is None


async def test_list_by_chain(store: Store) -> None:
    mine = [await store.submit(task(chain_id="c1")) for _ in range(2)]
    await store.submit(task(chain_id="c2"))
    await store.submit(task())
    listed = await store.list_tasks(chain_id="c1")
    assert [t.id for t in listed.tasks] == [t.id for t in mine]


async def test_logs_are_ordered_bounded_and_counted(store: Store) -> None:
    t = await running(store)
    await store.append_logs([(t.id, 1.0, f"line {i}") for i in range(8)], max_lines=5)
    await store.append_logs([(t.id, 2.0, "last")], max_lines=5)
    lines = await store.logs(t.id)
    assert [ln.line for ln in lines] == ["line 4", "line 5", "line 6", "line 7", "last"]
    assert [ln.seq for ln in lines] == [5, 6, 7, 8, 9]
    assert [ln.ts for ln in lines] == [1.0] * 4 + [2.0]
    assert [ln.line for ln in await store.logs(t.id, after=8)] == ["last"]
    assert [ln.seq for ln in await store.logs(t.id, after=4, limit=2)] == [5, 6]
    assert (await stored(store, t.id)).logs_dropped == 4
    assert await store.logs(new_id()) == []


async def test_logs_of_several_tasks_in_one_write_stay_apart(store: Store) -> None:
    a, b = await store.submit(task()), await store.submit(task())
    await store.append_logs([(a.id, 1.0, "a1"), (b.id, 1.0, "b1"), (a.id, 1.0, "a2")], 10)
    assert [(ln.seq, ln.line) for ln in await store.logs(a.id)] == [(1, "a1"), (2, "a2")]
    assert [(ln.seq, ln.line) for ln in await store.logs(b.id)] == [(1, "b1")]


async def test_progress_is_the_latest_reported(store: Store) -> None:
    t = await running(store)
    await store.set_progress([(t.id, 0.2, "start"), (new_id(), 0.9, "not a task")])
    await store.set_progress([(t.id, 0.5, "half")])
    got = await stored(store, t.id)
    assert (got.progress, got.progress_message) == (0.5, "half")


async def test_children_are_remembered_until_forgotten(store: Store) -> None:
    a = ChildRecord("a" * 32, 101, 5000, "boot-1", "mark-a")
    b = ChildRecord("b" * 32, 102, 5001, "boot-1", "mark-b", node="web-2")
    await store.record_child(a)
    await store.record_child(b)
    # A task's next attempt starts a new child: it replaces the old record.
    a2 = ChildRecord("a" * 32, 201, 6000, "boot-1", "mark-a2", node="web-1")
    await store.record_child(a2)
    # Each keeps the node that started it (a node's start-up ends only its own).
    assert sorted(await store.children(), key=lambda c: c.task_id) == [a2, b]
    await store.forget_children([a.task_id])
    assert await store.children() == [b]
    await store.forget_children([b.task_id, "c" * 32])
    assert await store.children() == []


async def test_oldest_queued_at_is_the_first_queued_task_of_the_worker(store: Store) -> None:
    assert await store.oldest_queued_at("W") is None
    first = await store.submit(task(queued_at=1000.0))
    await store.submit(task(queued_at=1001.0))
    await store.submit(task(worker="X", queued_at=900.0))
    assert await store.oldest_queued_at("W") == 1000.0
    assert await store.cancel(first.id, 1002.0)
    assert await store.oldest_queued_at("W") == 1001.0
    assert await store.oldest_queued_at("X") == 900.0
    await store.claim("X", claim(), 1003.0)
    assert await store.oldest_queued_at("X") is None


async def test_commit_stats_count_commits_and_the_writes_they_carry(store: Store) -> None:
    before = store.commit_stats()
    await asyncio.gather(*(store.submit(task()) for _ in range(20)))
    after = store.commit_stats()
    commits = after.seconds.count - before.seconds.count
    assert 1 <= commits <= 20
    assert after.group_size.count - before.group_size.count == commits
    assert after.group_size.total - before.group_size.total == 20
    # A compare-and-set that changes nothing still rode in a commit.
    assert not await store.cancel(new_id(), 1001.0)
    assert store.commit_stats().group_size.total - after.group_size.total == 1
