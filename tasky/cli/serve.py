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
    max_queued: Annotated[
        int,
        typer.Option(
            "--max-queued",
            envvar="TASKY_MAX_QUEUED",
            min=1,
            help="Tasks that may wait per worker; more get 429 with Retry-After.",
        ),
    ] = 10_000,
    max_chain_params: Annotated[
        int,
        typer.Option(
            "--max-chain-params",
            envvar="TASKY_MAX_CHAIN_PARAMS",
            min=0,
            help="Largest chain parameters (JSON bytes); more get 413.",
        ),
    ] = 64 << 10,
    max_chain_definition: Annotated[
        int,
        typer.Option(
            "--max-chain-definition",
            envvar="TASKY_MAX_CHAIN_DEFINITION",
            min=0,
            help="Largest chain definition (JSON bytes); more get 413.",
        ),
    ] = 256 << 10,
    max_chain_steps: Annotated[
        int,
        typer.Option(
            "--max-chain-steps",
            envvar="TASKY_MAX_CHAIN_STEPS",
            min=1,
            help="Most steps in one chain; more get 422.",
        ),
    ] = 1000,
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
            max_queued=max_queued,
            max_chain_params_bytes=max_chain_params,
            max_chain_definition_bytes=max_chain_definition,
            max_chain_steps=max_chain_steps,
        )
        if root:
            settings.roots = [r.resolve() for r in root]
        run_server(settings)
    except (ValueError, StoreLocked, ImportError) as exc:
        typer.secho(f"tasky: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
