"""Task ids: 32 lowercase hex characters, as in the seed.

An id is the time it was drawn in milliseconds since the epoch (12 hex characters, as a UUIDv7
begins) followed by 80 random bits (20 hex characters). The random part alone makes an id
unguessable; the time in front keeps the ids of new tasks together in every index on them. With
ids random from the first character, each new task's entry of the unique index on ``tasks.id``
(and of ``task_attempts``, ``task_logs``...) fell on a leaf page of its own, which each group
commit then wrote whole to the WAL: about 10 of the SQLite writer's 22 us per submitted task at
32 concurrent submits; ids that follow the clock touch one or two pages per commit.
"""

from __future__ import annotations

import os
import re
import time
from collections import deque

_ID = re.compile(r"^[0-9a-f]{32}$")
_RANDOM = 20  # hex characters of randomness after the time
_BLOCK = 256  # random parts drawn per os.urandom call
# Random parts drawn ahead, so that a submit makes no system call: os.urandom releases the GIL,
# and taking it back from a busy SQLite writer thread cost a submit more than all the rest of its
# id work. deque.popleft/extend are atomic, so threads never share one; a forked child starts
# empty.
_ahead: deque[str] = deque()
os.register_at_fork(after_in_child=_ahead.clear)


def _time_part() -> str:
    return format(time.time_ns() // 1_000_000, "012x")


def new_id() -> str:
    try:
        random = _ahead.popleft()
    except IndexError:
        block = os.urandom(_RANDOM // 2 * _BLOCK).hex()
        _ahead.extend(block[i : i + _RANDOM] for i in range(_RANDOM, len(block), _RANDOM))
        random = block[:_RANDOM]
    return _time_part() + random


def new_ids(count: int) -> list[str]:
    """``count`` new ids, drawn with one system call (a batch submit's: 1,000 ids in 0.10 ms
    instead of 0.15 ms one by one, and three fewer GIL hand-overs)."""
    at = _time_part()
    block = os.urandom(_RANDOM // 2 * count).hex()
    return [at + block[i : i + _RANDOM] for i in range(0, len(block), _RANDOM)]


def is_valid_id(value: str) -> bool:
    return _ID.match(value) is not None
