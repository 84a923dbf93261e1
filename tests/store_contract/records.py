"""Record builders for the contract, and the few stored states many tests start from.

Times are small made-up numbers (a store takes the caller's clock), so every expected value can
be read off the test.
"""

from __future__ import annotations

from typing import Any

from tasky.ids import new_id
from tasky.states import Status
from tasky.store import (
    AuditRecord,
    CallbackRecord,
    IdempotencyRecord,
    ScheduleRecord,
    Store,
    TaskRecord,
    TokenRecord,
)
from tasky.store.chain_records import ChainRecord, StepRecord
from tasky.store.records import Claim, Outcome

WORKER = "W"
OWNER = "node-a"
OTHER = "node-b"
LEASE = 9000.0  # far after every made-up time: leases end only when a test says so


def task(worker: str = WORKER, queued_at: float = 1000.0, **kw: Any) -> TaskRecord:
    """A task as submitted: Queued, at ``queued_at``."""
    fields: dict[str, Any] = {"config": {"n": 1}, "created_at": queued_at, "queued_at": queued_at}
    fields.update(kw)
    return TaskRecord(id=new_id(), worker=worker, status=Status.QUEUED, **fields)


def claim(
    owner: str = OWNER, limit: int = 10, count: int | None = None, lease_until: float = LEASE
) -> Claim:
    return Claim(owner=owner, lease_until=lease_until, limit=limit, count=count)


def outcome(status: Status = Status.COMPLETED, at: float = 1005.0, **kw: Any) -> Outcome:
    return Outcome(status=status, at=at, **kw)


async def running(
    store: Store,
    worker: str = WORKER,
    owner: str = OWNER,
    queued_at: float = 1000.0,
    started_at: float = 1002.0,
    lease_until: float = LEASE,
    **kw: Any,
) -> TaskRecord:
    """A task submitted at ``queued_at`` and claimed by ``owner`` at ``started_at`` (the worker
    must have nothing else queued)."""
    submitted = await store.submit(task(worker, queued_at, **kw))
    [claimed] = await store.claim(
        worker, claim(owner, count=1, lease_until=lease_until), started_at
    )
    assert claimed.id == submitted.id
    return claimed


async def finished(
    store: Store, status: Status = Status.COMPLETED, at: float = 2000.0, **kw: Any
) -> TaskRecord:
    """A task that ran one second and ended ``status`` at ``at``."""
    started = await running(store, queued_at=at - 2.0, started_at=at - 1.0, **kw)
    assert await store.finish(started.id, OWNER, 1, outcome(status, at))
    return await stored(store, started.id)


async def stored(store: Store, task_id: str) -> TaskRecord:
    found = await store.get(task_id)
    assert found is not None, f"task {task_id} is not stored"
    return found


def nonzero(by_status: dict[str, int]) -> dict[str, int]:
    """Status counts without the zeros a store may keep."""
    return {status: n for status, n in by_status.items() if n}


# -- the other tables -----------------------------------------------------------------------------
def token_record(name: str, token_hash: str, **kw: Any) -> TokenRecord:
    fields: dict[str, Any] = {"role": "operator", "workers": None, "created_at": 1000.0}
    fields.update(kw)
    return TokenRecord(name=name, token_hash=token_hash, **fields)


def audit_entry(at: float, target: str = "t") -> AuditRecord:
    return AuditRecord(
        at=at, token="ci", client="127.0.0.1", method="POST", route="/r", target=target, status=201
    )


def key(name: str = "k", target_id: str = "", at: float = 1000.0) -> IdempotencyRecord:
    """A key sent at ``at`` that counts for 60 seconds."""
    return IdempotencyRecord("ci", name, "fp", target_id, at, at + 60)


def callback(target_id: str, kind: str = "task", url: str = "http://h/cb") -> CallbackRecord:
    return CallbackRecord(kind, target_id, url, 1.0)


def schedule(name: str = "nightly", **kw: Any) -> ScheduleRecord:
    fields: dict[str, Any] = {
        "worker": WORKER,
        "chain": None,
        "config": {"n": 1},
        "cron": None,
        "interval": 60.0,
        "timezone": "UTC",
        "catch_up": "skip",
        "next_run": 2000.0,
        "created_at": 1000.0,
    }
    fields.update(kw)
    return ScheduleRecord(name=name, **fields)


def chain(status: Status = Status.RUNNING, **kw: Any) -> ChainRecord:
    fields: dict[str, Any] = {"spec": {"steps": []}, "parameters": {}, "created_at": 1000.0}
    fields.update(kw)
    return ChainRecord(id=new_id(), status=status, **fields)


def steps(chain_id: str, *task_ids: str | None) -> list[StepRecord]:
    """One step per task id (None: a step that has not started), named s0, s1, ..."""
    return [
        StepRecord(chain_id, f"s{i}", i, "pending" if t is None else "submitted", t)
        for i, t in enumerate(task_ids)
    ]
