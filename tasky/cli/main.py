"""Entry point of the ``tasky`` command. Sub-commands live in their own modules."""

from __future__ import annotations

import typer

from tasky.cli import client_commands, prune, schedule_commands, security_commands
from tasky.cli import serve as serve_command

app = typer.Typer(
    name="tasky",
    help="Tasky: run tasks on your servers through a REST API.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _group() -> None:
    """Tasky: run tasks on your servers through a REST API."""


serve_command.register(app)
client_commands.register(app)
security_commands.register(app)
schedule_commands.register(app)
prune.register(app)


def main() -> None:
    app()
