"""The ``--wait`` bar's run time stands still while the task is Paused (tasky.cli.live)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import Progress

from tasky.cli.live import RunTimeColumn, _bar_task, _note_pause


def test_the_bars_run_time_leaves_pauses_out() -> None:
    clock = [100.0]
    column = RunTimeColumn()
    progress = Progress(column, console=Console(file=None, quiet=True), get_time=lambda: clock[0])
    bar = progress.add_task("", run_time=None)

    def shown(status: str | None = None) -> str:
        task = _bar_task(progress, bar)
        if status is not None:
            progress.update(bar, **_note_pause(task, status))
        return column.render(_bar_task(progress, bar)).plain

    clock[0] = 102.0
    assert shown("Running") == "2.0s"
    assert shown("Paused") == "2.0s"
    clock[0] = 110.0
    assert shown() == "2.0s"  # Paused: the count stands still
    assert shown("Paused") == "2.0s"  # a repeated status keeps the pause's start
    assert shown("Running") == "2.0s"
    clock[0] = 111.5
    assert shown() == "3.5s"
    progress.update(bar, run_time=4.5)  # finished: the server's own figure
    assert shown() == "4.5s"
