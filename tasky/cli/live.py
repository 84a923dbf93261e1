"""``--wait`` and ``--follow``: a live progress bar (and log lines) until the task finishes."""

from __future__ import annotations

from typing import Any

from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
)
from rich.text import Text

from tasky.cli.render import log_line, percent, seconds
from tasky.cli.session import EXIT_INTERRUPTED, Session, status_text
from tasky.cli.terminal import safe
from tasky.client import LogLine, TaskStatus


def follow(s: Session, task_id: str, *, logs: bool, timeout: float | None = None) -> TaskStatus:
    """Show the task until it finishes; its final status.

    People get a progress bar with the task's status and progress message, log lines printed
    above it; scripts (--json) get one JSON object per log line and no bar.
    """
    try:
        return _follow(s, task_id, logs=logs, timeout=timeout)
    except KeyboardInterrupt:
        # Ctrl-C stops watching, not the task: say so, and how to stop it too.
        s.fail(
            f"stopped watching; task {task_id} keeps running",
            EXIT_INTERRUPTED,
            TaskId=task_id,
            Hint=f"tasky cancel {task_id} stops it; tasky wait {task_id} watches it again.",
        )


class RunTimeColumn(ProgressColumn):
    """How long the task has run: counted here while it runs, the server's own figure once it
    has finished (rich's elapsed column would show whole seconds since the bar appeared, cut
    down: 0:00:02 for a task of 2.9 s). Time the task spends Paused is not run time: the count
    stands still from the Paused status to the next one (see :func:`_note_pause`)."""

    def render(self, task: Task) -> Text:
        run_time = task.fields.get("run_time")
        if isinstance(run_time, float):
            return Text(seconds(run_time), style="progress.elapsed")
        since = task.fields.get("paused_since")
        now = since if isinstance(since, float) else (task.elapsed or 0.0)
        shown = max(now - float(task.fields.get("paused_for", 0.0)), 0.0)
        return Text(seconds(shown), style="progress.elapsed")


def _bar_task(progress: Progress, bar: TaskID) -> Task:
    return next(task for task in progress.tasks if task.id == bar)


def _note_pause(bar: Task, status: str) -> dict[str, Any]:
    """The bar's pause fields after a status: a pause stops the count (``paused_since``, on the
    bar's own clock), the status after it adds the pause to ``paused_for``."""
    now = bar.elapsed or 0.0
    since = bar.fields.get("paused_since")
    paused_for = float(bar.fields.get("paused_for", 0.0))
    if status == "Paused":
        return {"paused_since": since if isinstance(since, float) else now}
    if isinstance(since, float):
        paused_for += max(now - since, 0.0)
    return {"paused_since": None, "paused_for": paused_for}


def _follow(s: Session, task_id: str, *, logs: bool, timeout: float | None) -> TaskStatus:
    final: TaskStatus | None = None
    updates = s.client.follow(task_id, timeout=timeout, logs=logs)
    if s.json:
        for item in updates:
            if isinstance(item, LogLine):
                s.emit_line(item.wire())
            else:
                final = item
    else:
        progress = Progress(
            SpinnerColumn(finished_text="•"),
            TextColumn("{task.fields[status]}"),
            BarColumn(),
            TextColumn("{task.fields[percent]:>4}"),
            RunTimeColumn(),
            TextColumn("{task.fields[message]}"),
            console=s.out,
        )
        bar = None  # the bar appears with the first status: an unknown id shows no bar
        try:
            for item in updates:
                if isinstance(item, LogLine):
                    progress.console.print(log_line(item), highlight=False)
                    continue
                if bar is None:
                    progress.start()
                    bar = progress.add_task(
                        "", total=None, status="", percent="", message="", run_time=None
                    )
                final = item
                known = item.progress is not None
                progress.update(
                    bar,
                    total=1.0 if known or item.finished else None,
                    completed=item.progress or (1.0 if item.finished else 0.0),
                    status=status_text(item.status),
                    percent=percent(item.progress) if known else "",
                    message=safe(item.progress_message or ""),
                    run_time=s.client.get(task_id).duration_seconds if item.finished else None,
                    **_note_pause(_bar_task(progress, bar), item.status.value),
                )
        finally:
            # A bar never started (an unknown id) must not print the empty line stop() ends with.
            if bar is not None:
                progress.stop_task(bar)
                progress.stop()
    assert final is not None  # follow always ends with the final status
    return final
