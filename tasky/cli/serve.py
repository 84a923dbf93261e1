"""``tasky serve``: start the server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tasky.settings import Settings, parse_addr
from tasky.store import StoreLocked


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    addr: Annotated[
        str,
        typer.Option(
            "--addr",
            "-addr",
            envvar="TASKY_ADDR",
            help="HOST:PORT or :PORT to listen on (:PORT means 127.0.0.1).",
        ),
    ] = "127.0.0.1:8888",
    data: Annotated[
        Path, typer.Option("--data", envvar="TASKY_DATA", help="Directory of the SQLite database.")
    ] = Path("tasky-data"),
    workers: Annotated[
        list[str] | None,
        typer.Option(
            "--workers",
            envvar="TASKY_WORKERS",
            help="Python module whose workers to register (repeatable). Default: the examples.",
        ),
    ] = None,
    config: Annotated[
        list[Path] | None,
        typer.Option("--config", envvar="TASKY_CONFIG", help="TOML file declaring workers."),
    ] = None,
    root: Annotated[
        list[Path] | None,
        typer.Option(
            "--root",
            envvar="TASKY_ROOTS",
            help="Directory file workers may use (repeatable). Default: ./tasky-files (created). "
            "Tasky's own files (data, config, code) are refused under any root.",
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="TASKY_TOKEN",
            help="Require 'Authorization: Bearer TOKEN'. Needed to listen beyond loopback.",
        ),
    ] = None,
    max_body: Annotated[
        int,
        typer.Option("--max-body", envvar="TASKY_MAX_BODY", help="Largest request body, bytes."),
    ] = 1 << 20,
) -> None:
    """Start the Tasky server."""
    from tasky.server import serve as run_server

    try:
        host, port = parse_addr(addr)
        settings = Settings(
            host=host,
            port=port,
            data_dir=data,
            worker_modules=list(workers or []),
            config_files=list(config or []),
            token=token or None,
            max_body_bytes=max_body,
        )
        if root:
            settings.roots = [r.resolve() for r in root]
        run_server(settings)
    except (ValueError, StoreLocked, ImportError) as exc:
        typer.secho(f"tasky: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
