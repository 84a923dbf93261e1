"""``tasky schedule add|list|pause|resume|delete|run-now``: schedules through the API."""

from __future__ import annotations

import json as jsonlib
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from tasky.cli import render
from tasky.cli.session import EXIT_USAGE, JsonOption, Session, TokenOption, UrlOption, session
from tasky.client import Client, Schedule

schedule_app = typer.Typer(
    name="schedule",
    help="Run a worker or a named chain on a cron expression or an interval.",
    no_args_is_help=True,
    add_completion=False,
)

NameArgument = Annotated[str, typer.Argument(help="The schedule's name.", show_default=False)]


def register(app: typer.Typer) -> None:
    app.add_typer(schedule_app)


def _printable(text: str) -> str:
    # Names and errors come from the server: no control character may reach the terminal.
    return "".join(c if c.isprintable() else "?" for c in text)


def _object(s: Session, option: str, raw: str | None) -> dict[str, Any]:
    if raw is None:
        return {}
    try:
        value = jsonlib.loads(raw)
    except ValueError as exc:
        s.fail(f"{option} is not valid JSON: {exc}", EXIT_USAGE)
    if not isinstance(value, dict):
        s.fail(f"{option} must be a JSON object", EXIT_USAGE)
    return value


@schedule_app.command("add")
def add(
    name: NameArgument,
    worker: Annotated[str | None, typer.Option(help="The worker to run.")] = None,
    config: Annotated[
        str | None, typer.Option(help="The worker's config as JSON, e.g. '{\"seconds\": 5}'.")
    ] = None,
    chain: Annotated[
        str | None, typer.Option(help="A named chain definition to start instead.")
    ] = None,
    parameters: Annotated[str | None, typer.Option(help="The chain's parameters as JSON.")] = None,
    cron: Annotated[
        str | None, typer.Option(help='Five cron fields ("30 2 * * *") or @hourly, @daily...')
    ] = None,
    every: Annotated[float | None, typer.Option(help="Seconds between runs (not cron).")] = None,
    timezone: Annotated[str, typer.Option(help="IANA time zone of the cron fields.")] = "UTC",
    catch_up: Annotated[
        str, typer.Option(help="A run missed while no server ran: skip, or once.")
    ] = "skip",
    paused: Annotated[bool, typer.Option("--paused", help="Create it paused.")] = False,
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Create a schedule."""
    with session(url, token, json) as s:
        spec: dict[str, Any] = {
            "name": name,
            "timezone": timezone,
            "catch_up": catch_up,
            "paused": paused,
        }
        if worker is not None:
            spec |= {"worker": worker, "config": _object(s, "--config", config)}
        if chain is not None:
            spec |= {"chain": chain, "parameters": _object(s, "--parameters", parameters)}
        if cron is not None:
            spec["cron"] = cron
        if every is not None:
            spec["interval"] = every
        _show(s, s.client.create_schedule(spec))


@schedule_app.command("list")
def list_(url: UrlOption = None, token: TokenOption = None, json: JsonOption = False) -> None:
    """List schedules with their next and last runs."""
    with session(url, token, json) as s:
        found = s.client.schedules()
        if s.json:
            s.emit({"Schedules": [f.wire() for f in found]})
        elif not found:
            s.out.print("No schedules.")
        else:
            s.out.print(_table(found))


def _move_command(call: Callable[[Client, str], Schedule], summary: str) -> Callable[..., None]:
    """A command that moves one schedule by ``call`` (the client's method) and shows it after:
    ``summary`` is its help."""

    def command(
        name: NameArgument,
        url: UrlOption = None,
        token: TokenOption = None,
        json: JsonOption = False,
    ) -> None:
        with session(url, token, json) as s:
            _show(s, call(s.client, name))

    command.__doc__ = summary
    return command


pause = schedule_app.command("pause")(
    _move_command(Client.pause_schedule, "Pause a schedule: no run until it is resumed.")
)
resume = schedule_app.command("resume")(
    _move_command(
        Client.resume_schedule, "Resume a schedule from now (the paused time is not caught up)."
    )
)
run_now = schedule_app.command("run-now")(
    _move_command(Client.run_schedule, "Run a schedule once now, outside its timetable.")
)


@schedule_app.command("delete")
def delete(
    name: NameArgument, url: UrlOption = None, token: TokenOption = None, json: JsonOption = False
) -> None:
    """Delete a schedule."""
    with session(url, token, json) as s:
        s.client.delete_schedule(name)
        if s.json:
            s.emit({"Name": name, "Deleted": True})
        else:
            s.err.print(f"Deleted {_printable(name)!r}.", markup=False)


def _show(s: Session, found: Schedule) -> None:
    if s.json:
        s.emit(found.wire())
    else:
        s.out.print(_table([found]))


def _table(schedules: list[Schedule]) -> Table:
    table = Table(title="Schedules", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("Name", "Runs", "When", "Next run", "Last run", "Last task / chain"):
        table.add_column(column)
    for x in schedules:
        target = f"{x.worker}" if x.worker is not None else f"chain {x.chain}"
        timing = x.cron if x.cron is not None else f"every {x.every}"
        if x.cron is not None and x.timezone != "UTC":
            timing += f" ({x.timezone})"
        last = x.last_task_id or x.last_chain_id or render.DASH
        if x.last_error:
            last += f" ({x.last_error})"
        table.add_row(
            _printable(x.name),
            _printable(target),
            _printable(timing),
            "paused" if x.paused else render.when(x.next_run),
            render.when(x.last_run),
            _printable(last),
        )
    return table
