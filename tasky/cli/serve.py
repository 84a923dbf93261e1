"""``tasky serve``: start the server."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from tasky.cli.session import from_command_line
from tasky.settings import Settings, default, parse_addr

# Every default below is read from Settings (tasky.settings.default): one copy of each.
_DATA_DIR: Path = default("data_dir")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    ctx: typer.Context,
    addr: Annotated[
        str,
        typer.Option(
            "--addr",
            "-addr",
            envvar="TASKY_ADDR",
            help="HOST:PORT or :PORT to listen on (:PORT means 127.0.0.1).",
        ),
    ] = f"{default('host')}:{default('port')}",
    data: Annotated[
        Path, typer.Option("--data", envvar="TASKY_DATA", help="Directory of the SQLite database.")
    ] = _DATA_DIR,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            envvar="TASKY_DB",
            help="postgresql://USER@HOST:PORT/DB: keep tasks in this PostgreSQL database, "
            "shared by every node started with it (default: SQLite in --data). Give the "
            "password through ~/.pgpass or PGPASSWORD, not in the URL (ps shows it).",
        ),
    ] = None,
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
            help="Bootstrap admin token ('Authorization: Bearer TOKEN'). On the command line it "
            "shows in ps: prefer --token-file or TASKY_TOKEN.",
        ),
    ] = None,
    token_file: Annotated[
        Path | None,
        typer.Option(
            "--token-file",
            envvar="TASKY_TOKEN_FILE",
            help="Read the bootstrap admin token from this file (not readable by group or others).",
        ),
    ] = None,
    rate_limit: Annotated[
        float,
        typer.Option(
            "--rate-limit",
            envvar="TASKY_RATE_LIMIT",
            help="Requests per second per token; more answer 429 (0: no limit).",
        ),
    ] = default("rate_limit"),
    audit_retention_days: Annotated[
        float,
        typer.Option(
            "--audit-retention-days",
            envvar="TASKY_AUDIT_RETENTION_DAYS",
            help="Days the audit log keeps an entry (0: forever).",
        ),
    ] = default("audit_retention_days"),
    retention_days: Annotated[
        float,
        typer.Option(
            "--retention-days",
            envvar="TASKY_RETENTION_DAYS",
            help="Days a finished task (or chain) is kept before it is pruned (0: forever); "
            "a worker's retention_days overrides it.",
        ),
    ] = default("retention_days"),
    prune_interval: Annotated[
        float,
        typer.Option(
            "--prune-interval",
            envvar="TASKY_PRUNE_INTERVAL",
            help="Seconds between two runs of the background pruner.",
        ),
    ] = default("prune_interval"),
    max_body: Annotated[
        int,
        typer.Option("--max-body", envvar="TASKY_MAX_BODY", help="Largest request body, bytes."),
    ] = default("max_body_bytes"),
    max_batch_items: Annotated[
        int,
        typer.Option(
            "--max-batch-items",
            envvar="TASKY_MAX_BATCH_ITEMS",
            min=1,
            help="Configs in one batch submit (POST /workers/NAME/batch); more: 413.",
        ),
    ] = default("max_batch_items"),
    max_batch_bytes: Annotated[
        int,
        typer.Option(
            "--max-batch-bytes",
            envvar="TASKY_MAX_BATCH_BYTES",
            min=1,
            help="Largest batch submit body, bytes; larger: 413.",
        ),
    ] = default("max_batch_bytes"),
    outbound_allow: Annotated[
        list[str] | None,
        typer.Option(
            "--outbound-allow",
            envvar="TASKY_OUTBOUND_ALLOW",
            help="Network (10.0.0.0/8, 127.0.0.1) or host name that outbound requests (HTTPCheck) "
            "may reach besides public addresses (repeatable; the variable: space-separated).",
        ),
    ] = None,
    max_queued: Annotated[
        int,
        typer.Option(
            "--max-queued",
            envvar="TASKY_MAX_QUEUED",
            min=1,
            help="Tasks that may wait per worker; more get 429 with Retry-After.",
        ),
    ] = default("max_queued"),
    max_chain_params: Annotated[
        int,
        typer.Option(
            "--max-chain-params",
            envvar="TASKY_MAX_CHAIN_PARAMS",
            min=0,
            help="Largest chain parameters (JSON bytes); more get 413.",
        ),
    ] = default("max_chain_params_bytes"),
    max_chain_definition: Annotated[
        int,
        typer.Option(
            "--max-chain-definition",
            envvar="TASKY_MAX_CHAIN_DEFINITION",
            min=0,
            help="Largest chain definition (JSON bytes); more get 413.",
        ),
    ] = default("max_chain_definition_bytes"),
    max_chain_steps: Annotated[
        int,
        typer.Option(
            "--max-chain-steps",
            envvar="TASKY_MAX_CHAIN_STEPS",
            min=1,
            help="Most steps in one chain; more get 422.",
        ),
    ] = default("max_chain_steps"),
    idempotency_window: Annotated[
        float,
        typer.Option(
            "--idempotency-window",
            envvar="TASKY_IDEMPOTENCY_WINDOW",
            help="Seconds an Idempotency-Key is remembered (86400: a day).",
        ),
    ] = default("idempotency_window"),
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
    ] = default("header_timeout"),
    body_timeout: Annotated[
        float,
        typer.Option(
            "--body-timeout",
            envvar="TASKY_BODY_TIMEOUT",
            help="Seconds a client has to send a request's body once its headers arrived.",
        ),
    ] = default("body_timeout"),
    keep_alive_timeout: Annotated[
        float,
        typer.Option(
            "--keep-alive-timeout",
            envvar="TASKY_KEEP_ALIVE_TIMEOUT",
            help="Seconds an idle keep-alive connection stays open.",
        ),
    ] = default("keep_alive_timeout"),
    max_connections: Annotated[
        int,
        typer.Option(
            "--max-connections",
            envvar="TASKY_MAX_CONNECTIONS",
            help="Open connections at most; more are answered 503 at once.",
        ),
    ] = default("max_connections"),
    max_streams: Annotated[
        int,
        typer.Option(
            "--max-streams", envvar="TASKY_MAX_STREAMS", help="Open event streams at most (503)."
        ),
    ] = default("max_streams"),
    max_streams_per_principal: Annotated[
        int,
        typer.Option(
            "--max-streams-per-principal",
            envvar="TASKY_MAX_STREAMS_PER_PRINCIPAL",
            help="Open event streams per token (or per server without tokens) at most (429).",
        ),
    ] = default("max_streams_per_principal"),
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
    callback_secret: Annotated[
        str | None,
        typer.Option(
            "--callback-secret",
            envvar="TASKY_CALLBACK_SECRET",
            help="Secret that signs callbacks (HMAC-SHA256). Without one, ?callback= is refused. "
            "On the command line it shows in ps: prefer --callback-secret-file or the variable.",
        ),
    ] = None,
    callback_secret_file: Annotated[
        Path | None,
        typer.Option(
            "--callback-secret-file",
            envvar="TASKY_CALLBACK_SECRET_FILE",
            help="Read the callback signing secret from this file (not readable by others).",
        ),
    ] = None,
    callback_attempts: Annotated[
        int,
        typer.Option(
            "--callback-attempts",
            envvar="TASKY_CALLBACK_ATTEMPTS",
            help="Delivery attempts per callback before it is given up.",
        ),
    ] = default("callback_attempts"),
    callback_backoff: Annotated[
        float,
        typer.Option(
            "--callback-backoff",
            envvar="TASKY_CALLBACK_BACKOFF",
            help="Seconds before a callback's first retry; each later wait is 3 times longer.",
        ),
    ] = default("callback_backoff"),
    callback_timeout: Annotated[
        float,
        typer.Option(
            "--callback-timeout",
            envvar="TASKY_CALLBACK_TIMEOUT",
            help="Seconds one callback attempt may take.",
        ),
    ] = default("callback_timeout"),
    log_format: Annotated[
        str,
        typer.Option(
            "--log-format",
            envvar="TASKY_LOG_FORMAT",
            help="Server log lines: text, or json (one object a line, with task_id and worker).",
        ),
    ] = default("log_format"),
    access_log: Annotated[
        bool,
        typer.Option(
            "--access-log/--no-access-log",
            envvar="TASKY_ACCESS_LOG",
            help="Log one line per HTTP request (client, method, path, status, time).",
        ),
    ] = default("access_log"),
    poll_interval: Annotated[
        float,
        typer.Option(
            "--poll-interval",
            envvar="TASKY_POLL_INTERVAL",
            help="Seconds between two looks at the store for runnable tasks this server was not "
            "told about (queued by another server sharing the store).",
        ),
    ] = default("poll_interval"),
    grace: Annotated[
        float,
        typer.Option(
            "--grace",
            envvar="TASKY_GRACE",
            min=0,
            help="Seconds running tasks get to finish after SIGTERM/SIGINT before they are "
            "stopped; a second signal stops at once.",
        ),
    ] = default("grace"),
    max_log_lines: Annotated[
        int,
        typer.Option(
            "--max-log-lines",
            envvar="TASKY_MAX_LOG_LINES",
            min=1,
            help="Log lines kept per task; beyond, the oldest go.",
        ),
    ] = default("max_log_lines"),
    thread_pool_size: Annotated[
        int,
        typer.Option(
            "--thread-pool-size",
            envvar="TASKY_THREAD_POOL_SIZE",
            min=1,
            help="Threads for thread-mode tasks (raised to the thread workers' max_tasks "
            "together).",
        ),
    ] = default("thread_pool_size"),
    cancel_wait: Annotated[
        float,
        typer.Option(
            "--cancel-wait",
            envvar="TASKY_CANCEL_WAIT",
            help="Seconds a cancel waits for a running task to stop before answering 202.",
        ),
    ] = default("cancel_wait_seconds"),
    lease: Annotated[
        float,
        typer.Option(
            "--lease",
            envvar="TASKY_LEASE",
            help="Seconds a claim on a running task lasts; a heartbeat renews it every third.",
        ),
    ] = default("lease_seconds"),
    node_id: Annotated[
        str | None,
        typer.Option(
            "--node-id",
            envvar="TASKY_NODE_ID",
            help="This server's claim owner and name in its log, unique per process. "
            "Default: NODE:PID.",
        ),
    ] = None,
    node: Annotated[
        str,
        typer.Option(
            "--node",
            envvar="TASKY_NODE",
            help="This node's name: unique among the live nodes of one store and kept across "
            "restarts (a restarted node takes back what it held); tasks target it with "
            "?node=NAME (letters, digits, . _ -; up to 64). Default: the host name.",
        ),
    ] = default("node"),
    label: Annotated[
        list[str] | None,
        typer.Option(
            "--label",
            envvar="TASKY_LABELS",
            help="A label of this node (repeatable, or comma-separated): tasks target every "
            "node with it by ?label=L.",
        ),
    ] = None,
    sweep_interval: Annotated[
        float,
        typer.Option(
            "--sweep-interval",
            envvar="TASKY_SWEEP_INTERVAL",
            help="Seconds between two looks for tasks whose lease ran out (their node died or "
            "froze): re-queued if their worker is idempotent, Failed otherwise (--db only).",
        ),
    ] = default("sweep_interval"),
) -> None:
    """Start the Tasky server."""
    # The server and its store load here, not with the command line (every other command).
    from tasky.server import serve as run_server
    from tasky.store import StoreLocked

    _refuse_client_options(ctx)
    try:
        if token_file is not None:
            token = read_token_file(token_file)
        elif token and from_command_line(ctx, "token"):
            typer.secho(
                "tasky: warning: a token on the command line is visible to every user in ps; "
                "use --token-file or TASKY_TOKEN",
                fg=typer.colors.YELLOW,
                err=True,
            )
        if callback_secret_file is not None:
            callback_secret = read_token_file(callback_secret_file, "callback secret")
        elif callback_secret and from_command_line(ctx, "callback_secret"):
            typer.secho(
                "tasky: warning: a secret on the command line is visible to every user in ps; "
                "use --callback-secret-file or TASKY_CALLBACK_SECRET",
                fg=typer.colors.YELLOW,
                err=True,
            )
        host, port = parse_addr(addr)
        settings = Settings(
            host=host,
            port=port,
            data_dir=data,
            database_url=db or None,
            worker_modules=list(workers or []),
            config_files=list(config or []),
            token=token or None,
            max_body_bytes=max_body,
            max_batch_items=max_batch_items,
            max_batch_bytes=max_batch_bytes,
            outbound_allow=list(outbound_allow or []),
            rate_limit=rate_limit,
            audit_retention_days=audit_retention_days,
            retention_days=retention_days,
            prune_interval=prune_interval,
            max_queued=max_queued,
            max_chain_params_bytes=max_chain_params,
            max_chain_definition_bytes=max_chain_definition,
            max_chain_steps=max_chain_steps,
            idempotency_window=idempotency_window,
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
            callback_secret=callback_secret or None,
            callback_attempts=callback_attempts,
            callback_backoff=callback_backoff,
            callback_timeout=callback_timeout,
            log_format=log_format.lower(),
            access_log=access_log,
            grace=grace,
            max_log_lines=max_log_lines,
            thread_pool_size=thread_pool_size,
            cancel_wait_seconds=cancel_wait,
            lease_seconds=lease,
            poll_interval=poll_interval,
            sweep_interval=sweep_interval,
            node=node,
            labels=list(dict.fromkeys(_split(label))),
        )
        # The claim owner: unique per process, and telling which node it is (owner_node).
        settings.node_id = node_id if node_id is not None else f"{node}:{os.getpid()}"
        if root:
            settings.roots = [r.resolve() for r in root]
        run_server(settings)
    except (ValueError, StoreLocked, ImportError) as exc:
        typer.secho(f"tasky: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None


def _refuse_client_options(ctx: typer.Context) -> None:
    """``tasky --token T serve`` must not start a server without the token the user meant."""
    root = ctx.find_root()
    given = [
        f"--{name}"
        for name in ("url", "token", "json")
        if root is not ctx and from_command_line(root, name)
    ]
    if given:
        typer.secho(
            f"tasky: {', '.join(given)} before the command is for the client commands; "
            "tasky serve takes its own options after it (--addr HOST:PORT, --token-file FILE)",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(2)


def read_token_file(path: Path, what: str = "token") -> str:
    """The token (or other secret) in ``path``, surrounding whitespace stripped; refused if
    others can read it."""
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read the {what} file {path}: {exc.strerror}") from None
    if mode & 0o077:
        raise ValueError(
            f"the {what} file {path} is readable or writable by group or others: chmod 600 {path}"
        )
    token = text.strip()
    if not token or any(not c.isprintable() or c.isspace() for c in token):
        raise ValueError(f"the {what} file {path} must hold one {what}: no spaces, not empty")
    return token


def _split(values: list[str] | None) -> list[str]:
    """Repeated options, each of which may also hold a comma-separated list (handy in env vars)."""
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]
