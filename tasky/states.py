"""The one state machine every layer agrees on.

Statuses are spelled as in the seed. Every status change in the engine, the API and the stores is
checked against ``ALLOWED`` through :func:`check_move`, so an illegal move is caught in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    QUEUED = "Queued"
    RUNNING = "Running"
    PAUSED = "Paused"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELED = "Canceled"


# A stored or announced status string to its member: a dict lookup, where ``Status(text)`` runs
# the Enum machinery (about 1.4 us here; a task's run converts three: its claimed row and two
# status changes told to the listeners). A KeyError for a text that is no status.
STATUS_OF: dict[str, Status] = {status.value: status for status in Status}

FINISHED: frozenset[Status] = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELED})
ACTIVE: frozenset[Status] = frozenset({Status.QUEUED, Status.RUNNING, Status.PAUSED})

ALLOWED: dict[Status, frozenset[Status]] = {
    # Queued -> Queued is a re-queue of a paused-before-start task that is resumed.
    Status.QUEUED: frozenset({Status.RUNNING, Status.PAUSED, Status.CANCELED, Status.FAILED}),
    # Running -> Queued: a retry after a failure, or a re-run after a crash.
    Status.RUNNING: frozenset(
        {Status.COMPLETED, Status.FAILED, Status.CANCELED, Status.PAUSED, Status.QUEUED}
    ),
    # Paused -> Completed/Failed: a paused task whose work finished before it reached a checkpoint.
    Status.PAUSED: frozenset(
        {Status.QUEUED, Status.RUNNING, Status.CANCELED, Status.COMPLETED, Status.FAILED}
    ),
    Status.COMPLETED: frozenset({Status.QUEUED}),
    Status.FAILED: frozenset({Status.QUEUED}),
    Status.CANCELED: frozenset({Status.QUEUED}),
}


@dataclass(frozen=True, slots=True)
class Move:
    """One store operation's status change: the statuses it may start from and where it ends.

    ``held``: the operation applies to a task that holds a running slot (it was claimed and has
    not ended: Running, or Paused after it started) when True, to one that waits in the queue
    (Queued, or Paused before it started) when False, to either when None.
    """

    sources: frozenset[Status]
    targets: frozenset[Status]
    held: bool | None = None


# Every status-moving operation of the store (see tasky.store.base), in one table. Stores take
# their source statuses from here; the check below keeps the table inside ALLOWED, so the two
# cannot drift apart.
MOVES: dict[str, Move] = {
    "claim": Move(frozenset({Status.QUEUED}), frozenset({Status.RUNNING}), held=False),
    "finish": Move(
        frozenset({Status.RUNNING, Status.PAUSED}),
        frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELED}),
        held=True,
    ),
    "retry_later": Move(
        frozenset({Status.RUNNING, Status.PAUSED}), frozenset({Status.QUEUED}), held=True
    ),
    "requeue_interrupted": Move(
        frozenset({Status.RUNNING, Status.PAUSED}), frozenset({Status.QUEUED}), held=True
    ),
    "fail_interrupted": Move(
        frozenset({Status.RUNNING, Status.PAUSED}), frozenset({Status.FAILED}), held=True
    ),
    "cancel": Move(
        frozenset({Status.QUEUED, Status.PAUSED}), frozenset({Status.CANCELED}), held=False
    ),
    "pause": Move(frozenset({Status.QUEUED, Status.RUNNING}), frozenset({Status.PAUSED})),
    "resume": Move(frozenset({Status.PAUSED}), frozenset({Status.QUEUED, Status.RUNNING})),
    "rerun": Move(FINISHED, frozenset({Status.QUEUED})),
}


def _check_moves() -> None:
    for name, move in MOVES.items():
        for source in move.sources:
            stray = move.targets - ALLOWED[source]
            if stray:
                raise AssertionError(f"MOVES[{name!r}]: {source} -> {sorted(stray)} not allowed")


_check_moves()


# The actions of the seed's POST /task/{id}/actions and the statuses each one may start from.
ACTION_SOURCES: dict[str, frozenset[Status]] = {
    "cancel": frozenset({Status.QUEUED, Status.RUNNING, Status.PAUSED}),
    "pause": frozenset({Status.QUEUED, Status.RUNNING}),
    "resume": frozenset({Status.PAUSED}),
    "run": FINISHED,
}


# Every status-moving operation of the chain store (``<name>_chain`` in
# tasky.store.chain_base), in one table: chains use the task statuses but move on their own
# (a Failed chain restarts straight to Running), so ALLOWED does not apply to them. ``held`` has
# no meaning for a chain and stays None.
CHAIN_MOVES: dict[str, Move] = {
    # Every step settled: the chain ends with its outcome (a paused chain does not advance).
    "finish": Move(frozenset({Status.RUNNING}), frozenset({Status.COMPLETED, Status.FAILED})),
    "cancel": Move(frozenset({Status.RUNNING, Status.PAUSED}), frozenset({Status.CANCELED})),
    "pause": Move(frozenset({Status.RUNNING}), frozenset({Status.PAUSED})),
    "resume": Move(frozenset({Status.PAUSED}), frozenset({Status.RUNNING})),
    "restart": Move(frozenset({Status.FAILED, Status.CANCELED}), frozenset({Status.RUNNING})),
}

# The chain actions of POST /chains/{id}/actions and the chain statuses each one may start from.
CHAIN_ACTION_SOURCES: dict[str, frozenset[Status]] = {
    action: CHAIN_MOVES[action].sources for action in ("cancel", "pause", "resume", "restart")
}


class IllegalMove(Exception):
    """The task's current status does not allow this change."""

    def __init__(self, current: Status, wanted: Status | str) -> None:
        self.current = current
        self.wanted = wanted
        super().__init__(f"cannot move a {current} task to {wanted}")


def can_move(current: Status, new: Status) -> bool:
    return new in ALLOWED[current]


def check_move(current: Status, new: Status) -> None:
    if new not in ALLOWED[current]:
        raise IllegalMove(current, new)


def check_action(current: Status, action: str) -> None:
    """Raise IllegalMove when ``action`` cannot start from ``current``."""
    if current not in ACTION_SOURCES[action]:
        raise IllegalMove(current, action)
