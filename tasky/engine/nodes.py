"""This node in the store's registry: registered at start under its name (refused while another
live process holds the name), its heartbeat renewed a third of a lease apart, marked stopped on
a graceful stop. A node is alive while its last heartbeat is within one lease."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterable

from tasky import clock
from tasky.engine.leftovers import process_state
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


def gone_from_here(holder: NodeRecord) -> bool:
    """``holder`` ran on this machine and its process no longer exists, or has ended and waits
    only to be reaped (a pid reused by another program counts as alive: the name then waits for
    the heartbeat to age)."""
    if holder.host != os.uname().nodename or holder.pid <= 0 or holder.pid == os.getpid():
        return False
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's process: it exists
        return False
    return _ended(holder.pid)


def _ended(pid: int) -> bool:
    """Whether ``pid`` is a zombie: dead, its exit status not yet collected by its parent. A
    server killed with SIGKILL stays one until its parent (a shell, a supervisor, init) reaps it,
    which took over a second here; a restart meanwhile was refused the node's name for a whole
    lease. Linux's /proc tells; elsewhere the process counts as alive."""
    return process_state(pid) in ("Z", "X")


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
            host=os.uname().nodename,
            pid=os.getpid(),
        )
        holder = await self._store.register_node(record, now - settings.lease_seconds)
        if holder is not None and gone_from_here(holder):
            # A node of this name ran on this machine and its process is gone (killed, or the
            # machine restarted): this is its restart, no need to wait for its heartbeat to age.
            log.warning(
                "node %s: taking the name over from process %s, gone without stopping",
                settings.node,
                holder.owner,
            )
            holder = await self._store.register_node(record, holder.heartbeat_at + 1e-3)
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
