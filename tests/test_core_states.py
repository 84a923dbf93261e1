from __future__ import annotations

import pytest

from tasky.states import ALLOWED, STATUS_OF, IllegalMove, Status, check_action, check_move


def test_documented_moves() -> None:
    check_move(Status.QUEUED, Status.RUNNING)
    check_move(Status.RUNNING, Status.PAUSED)
    check_move(Status.PAUSED, Status.RUNNING)
    check_move(Status.COMPLETED, Status.QUEUED)
    check_move(Status.RUNNING, Status.QUEUED)
    for finished in (Status.COMPLETED, Status.FAILED, Status.CANCELED):
        assert ALLOWED[finished] == {Status.QUEUED}


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (Status.COMPLETED, Status.RUNNING),
        (Status.CANCELED, Status.PAUSED),
        (Status.FAILED, Status.COMPLETED),
        (Status.QUEUED, Status.COMPLETED),
    ],
)
def test_illegal_moves(current: Status, new: Status) -> None:
    with pytest.raises(IllegalMove):
        check_move(current, new)


def test_actions() -> None:
    check_action(Status.RUNNING, "pause")
    check_action(Status.FAILED, "run")
    with pytest.raises(IllegalMove):
        check_action(Status.QUEUED, "resume")
    with pytest.raises(IllegalMove):
        check_action(Status.RUNNING, "run")


def test_status_of_maps_each_stored_text_to_its_member() -> None:
    assert {text: STATUS_OF[text] for text in STATUS_OF} == {s.value: s for s in Status}
    assert all(STATUS_OF[s.value] is s for s in Status)
    assert STATUS_OF[Status.RUNNING] is Status.RUNNING  # a member looks itself up
    with pytest.raises(KeyError):
        STATUS_OF["running"]  # stored statuses are capitalised; a wrong one is not guessed
