"""Task ids (tasky.ids): 32 hex characters, a counter then 96 random bits. Ids made one after
another sort one after another (the id index's new entries share pages), their first 8
characters (what the page shows, what the finder searches by) differ from task to task, and
nothing about an id tells another."""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable

import pytest

from tasky import ids

CounterAt = Callable[[int], None]


@pytest.fixture
def counter_at(monkeypatch: pytest.MonkeyPatch) -> CounterAt:
    """Set the counter to a known value, with no ids drawn ahead."""

    def at(value: int) -> None:
        monkeypatch.setattr(ids, "_next", value)
        monkeypatch.setattr(ids, "_ahead", deque())

    return at


def test_ids_made_one_after_another_sort_one_after_another(counter_at: CounterAt) -> None:
    counter_at(0x1234_0000)
    made = [ids.new_id() for _ in range(600)] + ids.new_ids(1000) + [ids.new_id()]
    assert all(ids.is_valid_id(i) for i in made)
    assert len(set(made)) == len(made)
    # new_id draws 256 ahead, so the batch's counters come after the first block of singles
    singles, batch = made[:600] + made[-1:], made[600:-1]
    assert singles == sorted(singles) and batch == sorted(batch)
    first = int(batch[0][:8], 16)
    assert [int(i[:8], 16) for i in batch] == list(range(first, first + 1000))


def test_the_first_eight_characters_differ_from_one_id_to_the_next() -> None:
    made = ids.new_ids(5000) + [ids.new_id() for _ in range(5000)]
    assert len({i[:8] for i in made}) == len(made)


def test_the_rest_is_random(counter_at: CounterAt) -> None:
    counter_at(7)
    made = ids.new_ids(2000)
    tails = [i[8:] for i in made]
    assert len(set(tails)) == len(tails)
    # 96 random bits: every hex digit about equally often in every place (a counter or a
    # constant would put one digit in a place far more often)
    for place in range(24):
        digits = [t[place] for t in tails]
        assert max(digits.count(d) for d in "0123456789abcdef") < 2000 / 16 * 1.6


def test_the_counter_wraps_at_32_bits(counter_at: CounterAt) -> None:
    counter_at(2**32 - 2)
    made = ids.new_ids(4)
    assert [i[:8] for i in made] == ["fffffffe", "ffffffff", "00000000", "00000001"]
    assert ids.new_id()[:8] == "00000002"


def _child_id(queue: multiprocessing.Queue[str]) -> None:
    queue.put(ids.new_id())


def test_a_forked_child_counts_on_its_own() -> None:
    """A child forked with ids drawn ahead neither hands out the parent's next ids nor
    continues the parent's counter."""
    ids.new_id()  # draw a block ahead
    context = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[str] = context.Queue()
    child = context.Process(target=_child_id, args=(queue,))
    child.start()
    from_child = queue.get(timeout=30)
    child.join(timeout=30)
    parents_next = ids.new_id()
    assert from_child != parents_next
    assert abs(int(from_child[:8], 16) - int(parents_next[:8], 16)) > 1_000
