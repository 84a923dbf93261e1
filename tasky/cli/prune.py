"""``tasky prune``: prune finished tasks and chains older than an age now, through the API."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from tasky.cli.session import EXIT_USAGE, JsonOption, TokenOption, UrlOption, fail, session
from tasky.retention.plan import parse_age

# Pruning a large backlog is many small writes; give it far longer than an ordinary call.
_TIMEOUT = 3600.0


def register(app: typer.Typer) -> None:
    app.command("prune")(prune)


def prune(
    older_than: Annotated[
        str,
        typer.Option(
            "--older-than", help="Prune what finished longer ago than this: 30d, 12h, 90m, 45s."
        ),
    ],
    worker: Annotated[
        str | None,
        typer.Option("--worker", help="Only this worker's tasks (chains are left alone)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count what would be pruned.")
    ] = False,
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Prune finished tasks (and chains) older than an age now (admin). Statistics keep them."""
    try:
        seconds = parse_age(older_than)
    except ValueError as exc:
        fail(json, Console(stderr=True), str(exc), EXIT_USAGE)
    with session(url, token, json, timeout=_TIMEOUT) as s:
        done = s.client.prune(seconds, worker=worker, dry_run=dry_run)
        if s.json:
            s.emit(done.wire())
            return
        verb = "Would prune" if done.dry_run else "Pruned"
        chains = "" if worker is not None else f" and {done.chains} finished chains"
        s.out.print(f"{verb} {done.tasks} finished tasks{chains}.", markup=False)
