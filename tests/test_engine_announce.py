"""Announcer.statuses tells a group of status changes exactly as Announcer.status would one by
one: the same events in the same order, the same outcome counts, every listener called."""

from __future__ import annotations

from typing import Any

from tasky.engine.announce import Announcer
from tasky.engine.events import EventHub
from tasky.engine.lanes import Lane
from tasky.states import Status
from tasky.store.records import TaskRecord
from tasky.workers.base import EmptyConfig, Worker
from tasky.workers.context import AsyncTaskContext


class W(Worker):
    name = "W"
    description = "A worker."

    async def perform(self, config: EmptyConfig, task: AsyncTaskContext) -> None:
        return None


def _told(grouped: bool) -> tuple[list[Any], dict[str, int], list[Any]]:
    lane = Lane(W(), lambda lane, ending: None)
    hub = EventHub()
    announcer = Announcer(hub, {"W": lane})
    heard: list[Any] = []
    announcer.add_listener(lambda *args: heard.append(args))
    announcer.add_listener(lambda *args: 1 / 0)  # a failing listener stops none of the others
    records = [
        TaskRecord(f"{i:032x}", "W", Status.RUNNING, {}, 1.0, chain_id=chain)
        for i, chain in enumerate([None, "c1", None])
    ]
    changes = [(records[0], "Completed"), (records[1], "Failed"), (records[2], "Running")]
    if grouped:
        announcer.statuses(changes)
    else:
        for record, status in changes:
            announcer.status(record.id, record.worker, status, record.chain_id)
    return [e for _, e in hub.since(0)], dict(lane.counters.outcomes), heard


def test_statuses_tell_what_status_tells_one_by_one() -> None:
    events, counts, heard = _told(grouped=True)
    assert (events, counts, heard) == _told(grouped=False)
    assert [e["status"] for e in events] == ["Completed", "Failed", "Running"]
    assert events[1] == {
        "type": "task.status",
        "task": f"{1:032x}",
        "worker": "W",
        "status": "Failed",
        "chain": "c1",
    }
    assert (counts["Completed"], counts["Failed"]) == (1, 1)
    assert [h[2] for h in heard] == [Status.COMPLETED, Status.FAILED, Status.RUNNING]
