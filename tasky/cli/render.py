"""How the client commands look to people: rich tables, colours, readable times."""

from __future__ import annotations

import json
import time
from typing import Any

from rich import box
from rich.console import Console
from rich.highlighter import JSONHighlighter
from rich.table import Table

from tasky.cli.kv import describe_type
from tasky.cli.session import status_text
from tasky.cli.terminal import safe, visible, visible_json
from tasky.client import (
    LogLine,
    NodeInfo,
    Task,
    TaskResult,
    TaskSummary,
    WorkerInfo,
    WorkerStatistics,
)
from tasky.states import Status

DASH = "-"


def when(epoch: float | None) -> str:
    if epoch is None:
        return DASH
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def short_when(epoch: float) -> str:
    """Time of day for today's tasks, month-day and time before: task lists stay narrow."""
    stamp = time.localtime(epoch)
    if time.strftime("%Y-%m-%d", stamp) == time.strftime("%Y-%m-%d"):
        return time.strftime("%H:%M:%S", stamp)
    return time.strftime("%m-%d %H:%M", stamp)


def _table(title: str) -> Table:
    # No vertical rules and no outer padding: the 32-character task ids fit in 80 columns.
    return Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)


def seconds(value: float | None) -> str:
    if value is None:
        return DASH
    if value < 1:
        return f"{value * 1000:.0f}ms"
    if value < 60:
        return f"{value:.1f}s"
    minutes, secs = divmod(int(value), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def percent(value: float | None) -> str:
    return DASH if value is None else f"{value * 100:.0f}%"


def workers_table(workers: list[WorkerInfo]) -> Table:
    table = _table("Workers")
    table.add_column("Name", style="bold", no_wrap=True)
    table.add_column("Description")
    table.add_column("Actions")
    table.add_column("Max", justify="right")
    table.add_column("Mode")
    for w in workers:
        name = safe(w.name) if w.enabled else f"{safe(w.name)} [dim](disabled)[/]"
        table.add_row(
            name,
            safe(w.description),
            safe(", ".join(w.actions) or DASH),
            str(w.max_tasks) if w.max_tasks is not None else DASH,
            safe(w.mode or DASH),
        )
    return table


def nodes_table(nodes: list[NodeInfo]) -> Table:
    table = _table("Nodes")
    table.add_column("Name", style="bold", no_wrap=True)
    table.add_column("Alive")
    table.add_column("Labels")
    table.add_column("Running", justify="right")
    table.add_column("Last heartbeat", no_wrap=True)
    table.add_column("Started", no_wrap=True)
    table.add_column("Workers")
    for n in nodes:
        if n.alive:
            alive = "[green]yes[/]"
        elif n.stopped_at is not None:
            alive = "[dim]stopped[/]"
        else:
            alive = "[red]no[/]"
        table.add_row(
            safe(n.name),
            alive,
            safe(", ".join(n.labels) or DASH),
            str(n.running_tasks),
            when(n.last_heartbeat),
            when(n.started_at),
            safe(", ".join(n.workers) or DASH),
        )
    return table


def _constraints(node: dict[str, Any]) -> str:
    parts = []
    for key, label in (
        ("minimum", ">="),
        ("exclusiveMinimum", ">"),
        ("maximum", "<="),
        ("exclusiveMaximum", "<"),
        ("minLength", "length >="),
        ("maxLength", "length <="),
        ("minItems", "items >="),
        ("maxItems", "items <="),
    ):
        if key in node:
            parts.append(f"{label} {node[key]}")
    if "pattern" in node:
        parts.append(f"matches {node['pattern']}")
    return ", ".join(parts)


def print_worker(console: Console, info: WorkerInfo) -> None:
    console.print(f"[bold]{safe(info.name)}[/]" + ("" if info.enabled else " [red](disabled)[/]"))
    if info.description:
        console.print(safe(info.description))
    if info.usage:
        console.print(safe(info.usage), style="dim")
    facts = [
        f"max tasks {info.max_tasks}" if info.max_tasks is not None else "",
        f"mode {safe(info.mode)}" if info.mode else "",
        f"actions {safe(', '.join(info.actions))}" if info.actions else "",
        f"timeout {seconds(info.timeout)}" if info.timeout else "",
        f"retries {info.retries}" if info.retries else "",
    ]
    console.print(" · ".join(f for f in facts if f), style="cyan")
    schema = info.config_schema
    properties: dict[str, Any] = schema.get("properties") or {}
    if not properties:
        console.print("No config.")
        return
    defs = schema.get("$defs") or {}
    required = set(schema.get("required") or [])
    table = _table("Config")
    table.add_column("Key", style="bold", no_wrap=True)
    table.add_column("Type")
    table.add_column("Default")
    table.add_column("Constraints")
    table.add_column("Description")
    for key, node in properties.items():
        default = "[red]required[/]" if key in required else safe(json.dumps(node.get("default")))
        table.add_row(
            safe(key),
            safe(describe_type(node, defs)),
            default,
            safe(_constraints(node)),
            safe(str(node.get("description", ""))),
        )
    console.print(table)
    example = " ".join(f"{k}=..." for k in properties if k in required) or next(
        f"{k}=..." for k in properties
    )
    console.print(f"Example: tasky submit {safe(info.name)} {safe(example)}", style="dim")


def tasks_table(tasks: list[TaskSummary]) -> Table:
    table = _table("Tasks")
    table.add_column("Task", no_wrap=True)
    table.add_column("Worker", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    table.add_column("Created", no_wrap=True)
    table.add_column("Took", justify="right", no_wrap=True)
    for t in tasks:
        state = status_text(t.status)
        if t.progress is not None and t.status is not Status.COMPLETED:
            state += f" {percent(t.progress)}"
        table.add_row(
            safe(t.task_id),
            safe(t.worker),
            state,
            short_when(t.created_at),
            seconds(t.duration_seconds),
        )
    return table


def print_task(console: Console, task: Task) -> None:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row("Task", safe(task.task_id))
    table.add_row("Worker", safe(task.worker))
    table.add_row("Status", status_text(task.status))
    if task.queue_position is not None:
        table.add_row("In queue", f"#{task.queue_position} (1 starts next)")
    if task.progress is not None:
        message = f"  {safe(task.progress_message)}" if task.progress_message else ""
        table.add_row("Progress", percent(task.progress) + message)
    table.add_row("Created", when(task.created_at))
    if task.started_at is not None:
        table.add_row("Started", when(task.started_at))
    if task.finished_at is not None:
        table.add_row("Finished", when(task.finished_at))
    if task.duration_seconds is not None:
        # Running time only: a Paused task's stands still.
        table.add_row("Duration", seconds(task.duration_seconds))
    if task.attempt > 1:
        table.add_row("Attempt", str(task.attempt))
    if task.chain_id:
        table.add_row("Chain", safe(task.chain_id))
    if task.error:
        table.add_row("Error", f"[red]{safe(task.error)}[/]")
    console.print(table)
    if task.traceback:
        print_traceback(console, task.traceback)


def print_traceback(console: Console, text: str) -> None:
    """A failed attempt's traceback, as plain text: its control characters made visible."""
    console.print("Traceback of the failed attempt:", style="bold")
    console.print(visible(text.rstrip("\n")), markup=False, highlight=False, soft_wrap=True)


def print_result(console: Console, result: TaskResult) -> None:
    if result.error:
        console.print(f"{status_text(result.status)}: [red]{safe(result.error)}[/]")
    if result.status is not Status.COMPLETED or result.output is None:
        return  # only a Completed task has an output to show (the others answer {})
    if isinstance(result.output, str):
        console.print(visible(result.output), markup=False, highlight=False)
    else:
        console.print(JSONHighlighter()(visible_json(result.output)), soft_wrap=True)


def log_line(line: LogLine) -> str:
    stamp = time.strftime("%H:%M:%S", time.localtime(line.time))
    millis = int((line.time % 1) * 1000)
    return f"[dim]{stamp}.{millis:03d}[/] {safe(line.line)}"


def stats_table(stats: list[WorkerStatistics]) -> Table:
    table = _table("Worker statistics")
    table.add_column("Worker", no_wrap=True)
    # Short headings: eleven columns in 80 characters.
    for name in ("Run", "Queue", "Done", "Fail", "Cancel", "Fail%", "Avg", "p50", "p90"):
        table.add_column(name, justify="right", no_wrap=True)
    for s in stats:
        p = s.run_time_percentiles_seconds
        table.add_row(
            safe(s.worker),
            str(s.running_now),
            str(s.queued_now),
            str(s.by_status.get("Completed", 0)),
            str(s.by_status.get("Failed", 0)),
            str(s.by_status.get("Canceled", 0)),
            percent(s.failure_rate),
            seconds(s.average_run_time_seconds),
            seconds(p.get("p50")),
            seconds(p.get("p90")),
        )
    return table


def print_worker_stats(console: Console, s: WorkerStatistics) -> None:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row("Worker", safe(s.worker))
    table.add_row("Running now", str(s.running_now))
    table.add_row("Queued now", str(s.queued_now))
    table.add_row("Tasks performed", str(s.tasks_performed))
    for status, count in s.by_status.items():
        table.add_row(f"  {safe(status)}", str(count))
    table.add_row("Failure rate", percent(s.failure_rate))
    table.add_row("Average run time", seconds(s.average_run_time_seconds))
    for name, value in s.run_time_percentiles_seconds.items():
        table.add_row(f"  {safe(name)}", seconds(value))
    table.add_row("Average queue wait", seconds(s.average_queue_wait_seconds))
    console.print(table)
