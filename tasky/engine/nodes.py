"""This node in the store's registry: registered at start under its name (refused while another
live process holds the name), its heartbeat renewed a third of a lease apart, marked stopped on
a graceful stop. A node is alive while its last heartbeat is within one lease."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from tasky import clock
from tasky.settings import Settings
from tasky.store.base import Store
from tasky.store.records import NodeRecord

log = logging.getLogger("tasky.engine")


class NodeNameTaken(Exception):
    """Another live process already runs a node of this name on the store."""


def name_taken(settings: Settings, holder: NodeRecord, now: float) -> NodeNameTaken:
    age = max(0.0, now - holder.heartbeat_at)
    return NodeNameTaken(
        f"another live node is named {settings.node} (process {holder.owner}, last heartbeat "
        f"{age:.0f} s ago): give this one another --node name (TASKY_NODE), or stop that one "
        f"(its name is free {settings.lease_seconds:g} s after its last heartbeat)"
    )


def claim_targets(settings: Settings) -> tuple[str, ...]:
    """The targets a node's claims serve besides untargeted tasks."""
    return (f"node:{settings.node}", *(f"label:{label}" for label in settings.labels))


def is_alive(node: NodeRecord, now: float, lease_seconds: float) -> bool:
    return node.stopped_at is None and node.heartbeat_at >= now - lease_seconds


class Presence:
    def __init__(self, store: Store, settings: Settings, workers: Iterable[str]) -> None:
        self._store = store
        self._settings = settings
        self._workers = sorted(workers)
        self.registered = False

    async def register(self) -> None:
        now = clock.now()
        settings = self._settings
        record = NodeRecord(
            name=settings.node,
            labels=list(settings.labels),
            owner=settings.node_id,
            workers=self._workers,
            started_at=now,
            heartbeat_at=now,
        )
        holder = await self._store.register_node(record, now - settings.lease_seconds)
        if holder is not None:
            raise name_taken(settings, holder, now)
        self.registered = True

    async def heartbeat_loop(self) -> None:
        interval = self._settings.lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            try:
                kept = await self._store.node_heartbeat(
                    self._settings.node, self._settings.node_id, clock.now()
                )
            except Exception:
                log.exception("renewing this node's heartbeat failed")
                continue
            if not kept:
                log.error(
                    "node %s: another process took this name over (this one missed its "
                    "heartbeats for longer than a lease)",
                    self._settings.node,
                )

    async def stop(self) -> None:
        if not self.registered:
            return
        self.registered = False
        try:
            await self._store.stop_node(self._settings.node, self._settings.node_id, clock.now())
        except Exception:
            log.exception("marking this node stopped failed")
