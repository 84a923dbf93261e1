"""The nodes registry: register, heartbeat, stop, list; one live process per name."""

from __future__ import annotations

from tasky.store import NodeRecord, Store
from tests.store_contract.records import OTHER, OWNER, claim, task


def node(name: str = "a", owner: str = OWNER, at: float = 1000.0, **kw: object) -> NodeRecord:
    fields: dict[str, object] = {
        "labels": ["gpu"],
        "workers": ["W", "X"],
        "host": "box",
        "pid": 42,
    }
    fields.update(kw)
    return NodeRecord(
        name=name,
        owner=owner,
        started_at=at,
        heartbeat_at=at,
        **fields,  # type: ignore[arg-type]
    )


async def test_a_registered_node_is_listed_with_the_tasks_its_owner_holds(store: Store) -> None:
    assert await store.list_nodes() == []
    assert await store.register_node(node("b", OTHER, labels=[]), 900.0) is None
    assert await store.register_node(node("a"), 900.0) is None
    for _ in range(3):
        await store.submit(task())
    await store.claim("W", claim(OWNER, count=2), 1001.0)
    listed = await store.list_nodes()
    assert [n.name for n in listed] == ["a", "b"]
    a, b = listed
    assert (a.labels, a.workers, a.owner, a.started_at, a.heartbeat_at, a.stopped_at) == (
        ["gpu"],
        ["W", "X"],
        OWNER,
        1000.0,
        1000.0,
        None,
    )
    assert (a.running, b.running, b.labels, a.host, a.pid) == (2, 0, [], "box", 42)


async def test_heartbeat_and_stop_are_the_owners_only(store: Store) -> None:
    await store.register_node(node("a"), 900.0)
    assert await store.node_heartbeat("a", OWNER, 1010.0)
    assert not await store.node_heartbeat("a", OTHER, 1020.0)
    assert not await store.node_heartbeat("nobody", OWNER, 1020.0)
    assert not await store.stop_node("a", OTHER, 1020.0)
    [a] = await store.list_nodes()
    assert (a.heartbeat_at, a.stopped_at) == (1010.0, None)
    assert await store.stop_node("a", OWNER, 1030.0)
    assert not await store.node_heartbeat("a", OWNER, 1040.0)  # a stopped node stays stopped
    [a] = await store.list_nodes()
    assert (a.heartbeat_at, a.stopped_at) == (1010.0, 1030.0)


async def test_a_second_live_process_of_one_name_is_refused(store: Store) -> None:
    await store.register_node(node("a", OWNER, at=1000.0), 900.0)
    refused = await store.register_node(node("a", OTHER, at=1005.0, labels=[]), 990.0)
    assert refused is not None
    assert (refused.owner, refused.labels) == (OWNER, ["gpu"])
    [a] = await store.list_nodes()
    assert a.owner == OWNER  # nothing written
    # The same owner may register again (a retried start).
    assert await store.register_node(node("a", OWNER, at=1006.0), 990.0) is None


async def test_a_name_is_free_again_once_its_heartbeat_expired_or_it_stopped(
    store: Store,
) -> None:
    await store.register_node(node("a", OWNER, at=1000.0), 900.0)
    # The heartbeat of 1000 is older than what the newcomer counts as alive: it takes over.
    assert await store.register_node(node("a", OTHER, at=1100.0, labels=[]), 1001.0) is None
    [a] = await store.list_nodes()
    assert (a.owner, a.labels, a.started_at, a.stopped_at) == (OTHER, [], 1100.0, None)
    assert not await store.node_heartbeat("a", OWNER, 1101.0)  # the old owner lost the name
    assert await store.stop_node("a", OTHER, 1102.0)
    assert await store.register_node(node("a", OWNER, at=1103.0), 1100.0) is None
    [a] = await store.list_nodes()
    assert (a.owner, a.stopped_at) == (OWNER, None)
