"""Submits of the PostgreSQL store, grouped: those issued in one event-loop iteration share one
transaction, their statements pipelined (one round trip) and committed once.

A burst of concurrent submits (many clients, a chain fanning out) would otherwise cost one
round trip and one commit each, and wait for the pool's connections. Each statement of a group
sees what the earlier ones inserted, so a submit with a claim still starts at once only when no
task waits ahead of it. One refused row (a taken id) fails the whole transaction: the group is
then written again one submit at a time, so only the caller whose row was refused fails.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from tasky.store import pg_tasks
from tasky.store.base import DuplicateId
from tasky.store.pg_database import Conn, PgDatabase
from tasky.store.records import Claim, TaskRecord


@dataclass(slots=True)
class _Submit:
    task: TaskRecord
    config: str  # encoded by the caller, so a value that is not JSON fails only its caller
    claim: Claim | None
    future: asyncio.Future[TaskRecord]


class SubmitGroups:
    """Groups the submits of one store."""

    def __init__(self, db: PgDatabase) -> None:
        self._db = db
        self._waiting: list[_Submit] = []
        self._writing: set[asyncio.Task[None]] = set()

    def submit(
        self, task: TaskRecord, config: str, claim: Claim | None
    ) -> asyncio.Future[TaskRecord]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[TaskRecord] = loop.create_future()
        self._waiting.append(_Submit(task, config, claim, future))
        if len(self._waiting) == 1:
            loop.call_soon(self._start_group)
        return future

    async def drain(self) -> None:
        """Wait until every submit made so far is written (the store is closing)."""
        while self._waiting or self._writing:
            if self._waiting:
                self._start_group()
            await asyncio.gather(*self._writing, return_exceptions=True)

    def _start_group(self) -> None:
        group, self._waiting = self._waiting, []
        if group:
            writing = asyncio.get_running_loop().create_task(self._write(group))
            self._writing.add(writing)
            writing.add_done_callback(self._writing.discard)

    async def _write(self, group: list[_Submit]) -> None:
        try:
            outcomes = await self._db.write(
                lambda conn: _insert_group(conn, group), size=len(group), transaction=True
            )
        except Exception as exc:
            if len(group) == 1:
                _deliver(group[0].future, exc)
                return
            for one in group:  # in submit order, so the queue keeps it
                await self._write([one])
            return
        for submit, outcome in zip(group, outcomes, strict=True):
            _deliver(submit.future, outcome)


async def _insert_group(conn: Conn, group: list[_Submit]) -> list[TaskRecord | Exception]:
    async with conn.pipeline():
        cursors = [
            await conn.execute(*pg_tasks.insert_statement(s.task, s.config, s.claim)) for s in group
        ]
    outcomes: list[TaskRecord | Exception] = []
    for submit, cursor in zip(group, cursors, strict=True):
        try:
            outcomes.append(pg_tasks.stored(submit.task, await cursor.fetchone()))
        except DuplicateId as taken:
            outcomes.append(taken)
    return outcomes


def _deliver(future: asyncio.Future[TaskRecord], outcome: TaskRecord | Exception) -> None:
    if future.done():  # the caller went away (cancelled); the write happened all the same
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
