"""The client commands: ``tasky workers``, ``submit``, ``tasks``, ``status``, ``logs``, ...

Each command talks to a running server (``--url`` / ``TASKY_URL``) through :class:`tasky.Client`.
People get tables and colours; ``--json`` prints the server's JSON for scripts. Exit codes are
listed in :mod:`tasky.cli.session` and docs/cli.md.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer

from tasky.cli import render
from tasky.cli.batch_file import created_before, read_config_lines, refusal_by_line
from tasky.cli.kv import load_config_file, parse_assignments
from tasky.cli.session import (
    EXIT_FOR_STATUS,
    EXIT_USAGE,
    JsonOption,
    Session,
    TokenOption,
    UrlOption,
    session,
    status_text,
)
from tasky.cli.terminal import safe
from tasky.client import (
    BatchIncomplete,
    NotFound,
    TaskStatus,
    TaskSummary,
    TaskyError,
    WorkerInfo,
    WorkerStatistics,
)
from tasky.client._calls import DEFAULT_CHUNK
from tasky.states import Status

TaskId = Annotated[
    str, typer.Argument(help="The task's id (32 hex characters).", show_default=False)
]
WorkerName = Annotated[str, typer.Argument(help="The worker's name.", show_default=False)]


def register(app: typer.Typer) -> None:
    for name, command in (
        ("workers", workers),
        ("nodes", nodes),
        ("info", info),
        ("submit", submit),
        ("tasks", tasks),
        ("status", status),
        ("result", result),
        ("logs", logs),
        ("wait", wait),
        ("cancel", cancel),
        ("pause", pause),
        ("resume", resume),
        ("run", run),
        ("stats", stats),
    ):
        app.command(name)(command)


def _worker(s: Session, name: str) -> WorkerInfo:
    try:
        return s.client.worker(name)
    except NotFound:
        s.unknown_worker(name)


def _finish(s: Session, final: TaskStatus, *, stream: bool = False) -> None:
    """After --wait: the result (or error), then exit 0 / 1 (Failed) / 3 (Canceled).

    With ``stream`` (--follow --json) the result is one more JSON line after the log lines.
    """
    result = s.client.result(final.task_id)
    if s.json:
        (s.emit_line if stream else s.emit)(result.wire())
    else:
        render.print_result(s.out, result)
    raise typer.Exit(EXIT_FOR_STATUS.get(result.status, 0))


def workers(url: UrlOption = None, token: TokenOption = None, json: JsonOption = False) -> None:
    """List the server's workers."""
    with session(url, token, json) as s:
        found = s.client.workers()
        if s.json:
            s.emit([w.wire() for w in found])
        else:
            s.out.print(render.workers_table(found))


def nodes(url: UrlOption = None, token: TokenOption = None, json: JsonOption = False) -> None:
    """List the nodes sharing the server's store: labels, running tasks, alive or not."""
    with session(url, token, json) as s:
        found = s.client.nodes()
        if s.json:
            s.emit([n.wire() for n in found])
        else:
            s.out.print(render.nodes_table(found))


def info(
    name: WorkerName, url: UrlOption = None, token: TokenOption = None, json: JsonOption = False
) -> None:
    """Describe a worker: what it does and the config it takes."""
    with session(url, token, json) as s:
        found = _worker(s, name)
        if s.json:
            s.emit(found.wire())
        else:
            render.print_worker(s.out, found)


def submit(
    name: WorkerName,
    assignments: Annotated[
        list[str] | None,
        typer.Argument(
            help="Config as key=value (typed by the worker's schema) or key:=JSON.",
            show_default=False,
        ),
    ] = None,
    config_file: Annotated[
        str | None,
        typer.Option(
            "--config-file",
            "-c",
            help="Config from a JSON or TOML file ('-': JSON on stdin); key=value wins.",
            show_default=False,
        ),
    ] = None,
    wait_: Annotated[
        bool,
        typer.Option(
            "--wait", "-w", help="Show progress until the task ends; exit 0 if Completed."
        ),
    ] = False,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Stream the task's log lines (implies --wait).")
    ] = False,
    timeout: Annotated[
        float | None,
        typer.Option(help="Seconds the task may run before it is stopped and Failed."),
    ] = None,
    retries: Annotated[
        int | None, typer.Option(help="Extra attempts after a failure.", min=0)
    ] = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option(
            "--idempotency-key",
            help="Run this again with the same key and config: no second task, the first's id.",
            show_default=False,
        ),
    ] = None,
    from_file: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="Many tasks: one JSON config per line of this file ('-': stdin); prints the ids.",
            show_default=False,
        ),
    ] = None,
    chunk_size: Annotated[
        int, typer.Option("--chunk-size", min=1, help="With --from: configs per request.")
    ] = DEFAULT_CHUNK,
    node: Annotated[
        str | None,
        typer.Option("--node", help="Run it only on the node of this name.", show_default=False),
    ] = None,
    label: Annotated[
        str | None,
        typer.Option("--label", help="Run it only on a node with this label.", show_default=False),
    ] = None,
    wait_for_node: Annotated[
        bool,
        typer.Option(
            "--wait-for-node",
            help="With --node or --label: queue it even if no live node matches yet.",
        ),
    ] = False,
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Create a task: tasky submit Sleeper seconds=5 --wait"""
    with session(url, token, json) as s:
        if from_file is not None:
            if assignments or config_file or wait_ or follow or idempotency_key or node or label:
                s.fail(
                    "--from takes no key=value, --config-file, --wait, --follow, "
                    "--idempotency-key, --node or --label: each line of the file is one task's "
                    "whole config",
                    EXIT_USAGE,
                )
            _submit_lines(s, _worker(s, name), from_file, timeout, retries, chunk_size)
            return
        worker = _worker(s, name)
        config: dict[str, Any] = {}
        if config_file is not None:
            stdin = sys.stdin.read() if config_file == "-" else None
            config.update(load_config_file(config_file, stdin))
        config.update(parse_assignments(assignments or [], worker.config_schema, worker.name))
        task_id = s.client.submit(
            worker.name,
            config,
            timeout=timeout,
            retries=retries,
            idempotency_key=idempotency_key,
            node=node,
            label=label,
            wait_for_node=wait_for_node,
        )
        if not (wait_ or follow):
            if s.json:
                s.emit({"TaskId": task_id})
            else:
                s.out.print(f"Created task [bold]{safe(task_id)}[/] ({safe(worker.name)})")
                s.err.print(f"Follow it with: tasky logs -f {safe(task_id)}", style="dim")
            return
        if not s.json:
            s.err.print(f"Task {safe(task_id)} ({safe(worker.name)})", style="dim", highlight=False)
        from tasky.cli import live  # the progress display: only for the commands that show it

        _finish(s, live.follow(s, task_id, logs=follow), stream=follow)


def _submit_lines(
    s: Session,
    worker: WorkerInfo,
    path: str,
    timeout: float | None,
    retries: int | None,
    chunk_size: int,
) -> None:
    lines = read_config_lines(path, sys.stdin.read() if path == "-" else None)
    try:
        ids = s.client.submit_many(
            worker.name, lines.configs, timeout=timeout, retries=retries, chunk_size=chunk_size
        )
    except TaskyError as exc:
        created = created_before(exc)
        refusal = exc.error if isinstance(exc, BatchIncomplete) else exc
        if created:
            # Scripts must learn what exists: the ids first, then why the rest does not.
            _print_ids(s, created)
            s.err.print(
                f"{len(created)} of {len(lines.configs)} tasks were created before a request "
                "was refused; the rest were not",
                style="yellow",
            )
        raise refusal_by_line(refusal, lines) or refusal from None
    _print_ids(s, ids)
    if not s.json:
        noun = "task" if len(ids) == 1 else "tasks"
        s.err.print(f"Created {len(ids)} {noun} ({safe(worker.name)})", style="dim")


def _print_ids(s: Session, ids: list[str]) -> None:
    if s.json:
        s.emit({"TaskIds": ids})
    else:
        sys.stdout.write("".join(task_id + "\n" for task_id in ids))
        sys.stdout.flush()


def tasks(
    status: Annotated[
        str | None, typer.Option(help="Only tasks in this status (e.g. Running).")
    ] = None,
    worker: Annotated[str | None, typer.Option(help="Only tasks of this worker.")] = None,
    chain: Annotated[
        str | None, typer.Option(help="Only the steps of this chain.", hidden=True)
    ] = None,
    limit: Annotated[int, typer.Option(help="Show at most this many.", min=1)] = 20,
    oldest_first: Annotated[
        bool, typer.Option("--oldest-first", help="Oldest first (default: newest first).")
    ] = False,
    cursor: Annotated[
        str | None, typer.Option(help="Continue after a previous --json page (its NextCursor).")
    ] = None,
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """List tasks, newest first."""
    with session(url, token, json) as s:
        if worker is not None:
            worker = _worker(s, worker).name  # an unknown one exits 2, as for info and stats
        found: list[TaskSummary] = []
        next_cursor = cursor
        while len(found) < limit:
            page = s.client.list_tasks(
                status=status,
                worker=worker,
                chain=chain,
                limit=min(limit - len(found), 1000),
                cursor=next_cursor,
                order="asc" if oldest_first else "desc",
            )
            found.extend(page.tasks)
            next_cursor = page.next_cursor
            if next_cursor is None or not page.tasks:
                break
        if s.json:
            s.emit({"Tasks": [t.wire() for t in found], "NextCursor": next_cursor})
        elif not found:
            s.out.print("No tasks.")
        else:
            s.out.print(render.tasks_table(found))
            if next_cursor is not None:
                s.err.print(f"More tasks exist: --limit {limit * 2} shows more.", style="dim")


def status(
    task_id: TaskId, url: UrlOption = None, token: TokenOption = None, json: JsonOption = False
) -> None:
    """Show a task's status and progress."""
    with session(url, token, json) as s:
        if s.json:
            s.emit(s.client.status(task_id).wire())
        else:
            render.print_task(s.out, s.client.get(task_id))


def result(
    task_id: TaskId, url: UrlOption = None, token: TokenOption = None, json: JsonOption = False
) -> None:
    """Print a finished task's output; exit 1 if it Failed, 3 if it was Canceled."""
    with session(url, token, json) as s:
        found = s.client.result(task_id)
        if s.json:
            s.emit(found.wire())
        else:
            render.print_result(s.out, found)
            if found.status is Status.FAILED and (tb := s.client.get(task_id).traceback):
                render.print_traceback(s.out, tb)
        raise typer.Exit(EXIT_FOR_STATUS.get(found.status, 0))


def logs(
    task_id: TaskId,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines until the task ends.")
    ] = False,
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Print a task's log lines."""
    with session(url, token, json) as s:
        if follow:
            for item in s.client.follow(task_id, logs=True):
                if not isinstance(item, TaskStatus):
                    _print_log(s, item)
            return
        after = 0
        while True:
            page = s.client.logs(task_id, after=after, limit=1000)
            for line in page.lines:
                _print_log(s, line)
            if len(page.lines) < 1000:
                break
            after = page.next
        if page.dropped and not s.json:
            s.err.print(f"({page.dropped} older lines were dropped)", style="dim")


def _print_log(s: Session, line: Any) -> None:
    if s.json:
        s.emit_line(line.wire())
    else:
        s.out.print(render.log_line(line), highlight=False)


def wait(
    task_id: TaskId,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Stream the task's log lines too.")
    ] = False,
    timeout: Annotated[
        float | None, typer.Option(help="Give up after this many seconds (exit 6).")
    ] = None,
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Wait for a task to end; exit 0 if Completed, 1 if Failed, 3 if Canceled."""
    from tasky.cli import live

    with session(url, token, json) as s:
        _finish(s, live.follow(s, task_id, logs=follow, timeout=timeout), stream=follow)


def _control(action: str, task_id: str, url: str | None, token: str | None, json: bool) -> None:
    with session(url, token, json) as s:
        act = {
            "cancel": s.client.cancel,
            "pause": s.client.pause,
            "resume": s.client.resume,
            "run": s.client.run,
        }[action]
        now = act(task_id)
        if s.json:
            s.emit(now.wire())
            return
        stopping = action == "cancel" and not now.finished
        note = " (stopping; it shows Canceled once its work has stopped)" if stopping else ""
        s.out.print(f"{safe(task_id)}  {status_text(now.status)}{note}")


def _control_command(action: str, summary: str) -> Callable[..., None]:
    """The command ``tasky ACTION TASK_ID`` (cancel, pause, resume, run): ``summary`` is its
    help."""

    def command(
        task_id: TaskId, url: UrlOption = None, token: TokenOption = None, json: JsonOption = False
    ) -> None:
        _control(action, task_id, url, token, json)

    command.__doc__ = summary
    return command


cancel = _control_command("cancel", "Cancel a task.")
pause = _control_command("pause", "Pause a task (if its worker supports it).")
resume = _control_command("resume", "Resume a paused task.")
run = _control_command("run", "Run a finished task again.")


def stats(
    name: Annotated[
        str | None, typer.Argument(help="One worker (default: all).", show_default=False)
    ] = None,
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Worker statistics: counts, failure rate, run and queue times."""
    with session(url, token, json) as s:
        if name is not None:
            one = _worker_stats(s, name)
            if s.json:
                s.emit(one.wire())
            else:
                render.print_worker_stats(s.out, one)
            return
        every = [s.client.worker_statistics(w.name) for w in s.client.workers()]
        if s.json:
            s.emit([one.wire() for one in every])
        else:
            s.out.print(render.stats_table(every))


def _worker_stats(s: Session, name: str) -> WorkerStatistics:
    try:
        return s.client.worker_statistics(name)
    except NotFound:
        s.unknown_worker(name)
