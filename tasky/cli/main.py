"""Entry point of the ``tasky`` command. Sub-commands live in their own modules."""

from __future__ import annotations

from typing import Annotated

import typer

from tasky import __version__
from tasky.cli import client_commands, prune, schedule_commands, security_commands
from tasky.cli import serve as serve_command
from tasky.cli.session import BEARER_HELP, JSON_HELP, URL_HELP

app = typer.Typer(
    name="tasky",
    help="Tasky: run tasks on your servers through a REST API. The client commands take --url, "
    "--token and --json before or after the command.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"tasky {__version__}")
        raise typer.Exit()


@app.callback()
def _group(
    # Also accepted before the command (tasky --url U workers); the command's own wins. Read by
    # the client commands through tasky.cli.session; tasky serve refuses them (it has --addr).
    url: Annotated[
        str | None,
        typer.Option("--url", envvar="TASKY_URL", help=URL_HELP, show_default=False),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option("--token", envvar="TASKY_TOKEN", help=BEARER_HELP, show_default=False),
    ] = None,
    json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """The options every client command shares, accepted before the command too."""


serve_command.register(app)
client_commands.register(app)
security_commands.register(app)
schedule_commands.register(app)
prune.register(app)


def main() -> None:
    app()
