"""Task ids: 32 lowercase hex characters, the time they were drawn (ms) first, then 80 random
bits (tasky.ids)."""

from __future__ import annotations

import itertools

import pytest

from tasky import ids


def _at(monkeypatch: pytest.MonkeyPatch, ms: int) -> None:
    monkeypatch.setattr(ids.time, "time_ns", lambda: ms * 1_000_000 + 999_999)


def test_an_id_begins_with_the_millisecond_it_was_drawn_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _at(monkeypatch, 1_764_519_062_456)
    one = ids.new_id()
    [two, three] = ids.new_ids(2)
    for drawn in (one, two, three):
        assert ids.is_valid_id(drawn)
        assert drawn[:12] == format(1_764_519_062_456, "012x")
    # The rest is random: ids of one millisecond differ there.
    assert len({one[12:], two[12:], three[12:]}) == 3


def test_ids_drawn_later_sort_after_earlier_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn = []
    for ms in (1_000, 1_001, 1_764_519_062_456, 1_764_519_062_457):
        _at(monkeypatch, ms)
        drawn += [ids.new_id(), *ids.new_ids(3)]
    firsts = drawn[::4]
    assert firsts == sorted(firsts)
    assert all(a[:12] <= b[:12] for a, b in itertools.pairwise(drawn))


def test_ids_do_not_repeat() -> None:
    drawn = [ids.new_id() for _ in range(3000)] + ids.new_ids(3000)
    assert len(set(drawn)) == len(drawn)
    assert all(ids.is_valid_id(one) for one in drawn)
