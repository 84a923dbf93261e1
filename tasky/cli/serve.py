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
            help="Directory file workers may use (repeatable). Default: the working directory.",
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
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-host",
            envvar="TASKY_ALLOWED_HOSTS",
            help="Host name clients may use besides the bind address and loopback names "
            "(repeatable; env: space- or comma-separated). Others get 421.",
        ),
    ] = None,
    allowed_origin: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-origin",
            envvar="TASKY_ALLOWED_ORIGINS",
            help="Browser origin (https://name[:port]) allowed to send POST/PUT/DELETE besides "
            "the server's own (repeatable). Others get 403.",
        ),
    ] = None,
    header_timeout: Annotated[
        float,
        typer.Option(
            "--header-timeout",
            envvar="TASKY_HEADER_TIMEOUT",
            help="Seconds a client has to send a request's headers before it is disconnected.",
        ),
    ] = 10.0,
    body_timeout: Annotated[
        float,
        typer.Option(
            "--body-timeout",
            envvar="TASKY_BODY_TIMEOUT",
            help="Seconds a client has to send a request's body once its headers arrived.",
        ),
    ] = 30.0,
    keep_alive_timeout: Annotated[
        float,
        typer.Option(
            "--keep-alive-timeout",
            envvar="TASKY_KEEP_ALIVE_TIMEOUT",
            help="Seconds an idle keep-alive connection stays open.",
        ),
    ] = 5.0,
    max_connections: Annotated[
        int,
        typer.Option(
            "--max-connections",
            envvar="TASKY_MAX_CONNECTIONS",
            help="Open connections at most; more are answered 503 at once.",
        ),
    ] = 1000,
    max_streams: Annotated[
        int,
        typer.Option(
            "--max-streams", envvar="TASKY_MAX_STREAMS", help="Open event streams at most (503)."
        ),
    ] = 200,
    max_streams_per_principal: Annotated[
        int,
        typer.Option(
            "--max-streams-per-principal",
            envvar="TASKY_MAX_STREAMS_PER_PRINCIPAL",
            help="Open event streams per token (or per server without tokens) at most (429).",
        ),
    ] = 50,
    tls_cert: Annotated[
        Path | None,
        typer.Option(
            "--tls-cert", envvar="TASKY_TLS_CERT", help="Serve HTTPS: certificate chain (PEM)."
        ),
    ] = None,
    tls_key: Annotated[
        Path | None,
        typer.Option("--tls-key", envvar="TASKY_TLS_KEY", help="Serve HTTPS: private key (PEM)."),
    ] = None,
    forwarded_allow_ips: Annotated[
        list[str] | None,
        typer.Option(
            "--forwarded-allow-ips",
            envvar="TASKY_FORWARDED_ALLOW_IPS",
            help="Reverse proxy address whose X-Forwarded-For/-Proto headers are believed "
            "(repeatable). Default: none.",
        ),
    ] = None,
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
            allowed_hosts=_split(allowed_host),
            allowed_origins=_split(allowed_origin),
            header_timeout=header_timeout,
            body_timeout=body_timeout,
            keep_alive_timeout=keep_alive_timeout,
            max_connections=max_connections,
            max_streams=max_streams,
            max_streams_per_principal=max_streams_per_principal,
            tls_cert=tls_cert,
            tls_key=tls_key,
            forwarded_allow_ips=_split(forwarded_allow_ips),
        )
        if root:
            settings.roots = [r.resolve() for r in root]
        run_server(settings)
    except (ValueError, StoreLocked, ImportError) as exc:
        typer.secho(f"tasky: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None


def _split(values: list[str] | None) -> list[str]:
    """Repeated options, each of which may also hold a comma-separated list (handy in env vars)."""
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]
