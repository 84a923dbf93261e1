"""The one settings object, and the one place its defaults are written.

Every field can come from a ``tasky serve`` option and its ``TASKY_*`` environment variable
(``tasky serve --help`` shows both, and the default it takes from here).
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from tasky.logs import LOG_FORMATS
from tasky.net.addresses import OutboundPolicy
from tasky.redact import redact_url

POSTGRES_SCHEMES = ("postgresql://", "postgres://")

# The shortest token accepted when listening beyond loopback (tasky.auth.tokens makes 49).
MIN_PUBLIC_TOKEN = 32


@dataclass(slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8888
    data_dir: Path = Path("tasky-data")
    # A PostgreSQL URL (--db, TASKY_DB) shared by many nodes; None: SQLite in data_dir.
    database_url: str | None = None
    worker_modules: list[str] = field(default_factory=list)
    config_files: list[Path] = field(default_factory=list)
    # Directories that file workers may read and write; default: ./tasky-files, a dedicated
    # directory, never the working directory (which holds the data directory and the config).
    roots: list[Path] = field(default_factory=lambda: [Path.cwd() / "tasky-files"])
    # The bootstrap admin token (--token-file, TASKY_TOKEN); stored tokens come from the API.
    token: str | None = None
    # Requests per second per token (0: no limit); audit entries older than this are pruned
    # (0: kept forever).
    rate_limit: float = 0.0
    audit_retention_days: float = 90.0
    # Finished tasks and chains older than this are pruned in the background, every
    # prune_interval seconds (0: kept forever; a worker's retention_days overrides it).
    retention_days: float = 30.0
    prune_interval: float = 600.0
    max_body_bytes: int = 1 << 20
    # A batch submit (POST /workers/{name}/batch): configs in one batch, and its body's bytes.
    max_batch_items: int = 10_000
    max_batch_bytes: int = 16 << 20
    # Tasks that may wait (Queued or Paused) per worker; a worker's max_queued overrides it.
    max_queued: int = 100_000
    # A chain's parameters and its definition, as JSON bytes; steps in one chain.
    max_chain_params_bytes: int = 64 << 10
    max_chain_definition_bytes: int = 5 << 20
    max_chain_steps: int = 20_000
    # Log lines kept per task; beyond, the oldest go (the task counts them).
    max_log_lines: int = 10_000
    # Seconds an Idempotency-Key of a submit or chain start is remembered (tasky.idempotency).
    idempotency_window: float = 86400.0
    # Threads for thread-mode work (never fewer than the thread workers' max_tasks together).
    thread_pool_size: int = 32
    # Seconds a claimed task's lease lasts; a heartbeat renews it every third of that.
    lease_seconds: float = 30.0
    # Seconds between two looks at the store for runnable tasks this engine was not told about
    # (queued by another engine on the same store, or written there directly).
    poll_interval: float = 1.0
    # How long POST .../cancel waits for a running task to really stop before answering 202.
    cancel_wait_seconds: float = 2.0
    # What outbound requests (HTTPCheck) may reach besides public addresses: CIDRs, host names.
    outbound_allow: list[str] = field(default_factory=list)
    # This server's claim owner (unique per process), also its name in its log lines and on the
    # tasks it claims: NODE:PID by default (see owner_node).
    node_id: str = field(default_factory=lambda: f"{os.uname().nodename}:{os.getpid()}")
    # The node's name: the same across its restarts, unique among the live nodes of one store
    # (tasks target it with ?node=; start-up recovery takes back the tasks its earlier runs
    # held). Its labels: tasks target them with ?label=.
    node: str = field(default_factory=lambda: os.uname().nodename)
    labels: list[str] = field(default_factory=list)
    # Seconds between two looks for tasks whose lease ran out (their node died or froze), on a
    # store shared by many nodes.
    sweep_interval: float = 5.0
    # Request guard (tasky.api.guard): Host names beyond the bind address (and loopback names),
    # and browser origins beyond the server's own that may send state-changing requests.
    allowed_hosts: list[str] = field(default_factory=list)
    allowed_origins: list[str] = field(default_factory=list)
    # Slow and idle clients (tasky.protocol): seconds to send a request head, then its body;
    # seconds a keep-alive connection may sit idle; open connections at most (more: 503).
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keep_alive_timeout: float = 5.0
    max_connections: int = 1000
    # Open event streams at most, in all and per caller (token name; "anonymous" without tokens).
    max_streams: int = 200
    max_streams_per_principal: int = 50
    # HTTPS: certificate chain and key files (PEM). Both or neither.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # Reverse proxies whose X-Forwarded-For/-Proto are believed (uvicorn's forwarded_allow_ips).
    forwarded_allow_ips: list[str] = field(default_factory=list)
    # Callbacks (tasky.callbacks): the HMAC signing secret (None: callbacks are refused at
    # submit), attempts per callback, the first retry's delay (tripled each time), and how long
    # one attempt may take. 5 attempts from 15 s: retries over about 10 minutes.
    callback_secret: str | None = field(default=None, repr=False)
    callback_attempts: int = 5
    callback_backoff: float = 15.0
    callback_timeout: float = 10.0
    # The server log: "text" or "json" lines; one INFO line per HTTP request when access_log.
    log_format: str = "text"
    access_log: bool = False
    # Graceful shutdown (tasky.shutdown): seconds running tasks get to finish after SIGTERM.
    grace: float = 30.0

    @property
    def database_path(self) -> Path:
        return self.data_dir / "tasky.db"

    @property
    def store_url(self) -> str:
        """What ``tasky.store.create_store`` opens: the --db URL, or the SQLite file."""
        return self.database_url or str(self.database_path)

    @property
    def store_description(self) -> str:
        """Where the data is, for the log: the --db URL without its credentials."""
        return redact_url(self.database_url) if self.database_url else str(self.data_dir)

    def check(self, stored_tokens: int = 0) -> None:
        """Refuse unsafe combinations before anything listens.

        Beyond loopback, auth must be on (a bootstrap token or stored tokens) and every token
        long enough not to be guessed; stored tokens are made long, so only the bootstrap
        token needs checking.
        """
        if not is_loopback(self.host):
            if not self.token and not stored_tokens:
                raise ValueError(
                    f"refusing to listen on {self.host} without a token: set --token-file or "
                    "TASKY_TOKEN (or create tokens with tasky token create), "
                    "or listen on 127.0.0.1"
                )
            if self.token and len(self.token) < MIN_PUBLIC_TOKEN:
                raise ValueError(
                    f"refusing to listen on {self.host} with a token of {len(self.token)} "
                    f"characters: use at least {MIN_PUBLIC_TOKEN} "
                    "(python -c 'import secrets; print(secrets.token_urlsafe(32))')"
                )
        if self.rate_limit < 0 or self.audit_retention_days < 0:
            raise ValueError("--rate-limit and --audit-retention-days cannot be negative")
        if not self.idempotency_window > 0:  # NaN too
            raise ValueError("--idempotency-window must be > 0 seconds")
        if not self.retention_days >= 0 or not self.prune_interval > 0:
            raise ValueError("--retention-days cannot be negative, --prune-interval must be > 0")
        self.check_database_url()
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port out of range: {self.port}")
        OutboundPolicy.parse(self.outbound_allow)  # a mistake in the list stops the start
        data = Path(os.path.realpath(self.data_dir))
        for root in self.roots:
            real = Path(os.path.realpath(root))
            if real == data or real.is_relative_to(data):
                raise ValueError(f"the file root {root} lies inside the data directory {data}")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("--tls-cert and --tls-key go together: give both or neither")
        for tls_file in (self.tls_cert, self.tls_key):
            if tls_file is not None and not tls_file.is_file():
                raise ValueError(f"TLS file not found: {tls_file}")
        if min(self.header_timeout, self.body_timeout, self.keep_alive_timeout) <= 0:
            raise ValueError("--header-timeout, --body-timeout, --keep-alive-timeout must be > 0")
        if self.callback_attempts < 1 or min(self.callback_backoff, self.callback_timeout) <= 0:
            raise ValueError(
                "--callback-attempts must be >= 1, --callback-backoff and --callback-timeout > 0"
            )
        if self.log_format not in LOG_FORMATS:
            raise ValueError(f"--log-format must be one of {', '.join(LOG_FORMATS)}")
        if min(self.max_batch_items, self.max_batch_bytes) < 1:
            raise ValueError("--max-batch-items and --max-batch-bytes must be >= 1")
        if min(self.max_connections, self.max_streams, self.max_streams_per_principal) < 1:
            raise ValueError("--max-connections, --max-streams and its per-caller cap must be >= 1")
        if not 0 < self.poll_interval <= MAX_POLL_INTERVAL:  # also refuses nan
            raise ValueError(
                f"--poll-interval must be more than 0 and at most {MAX_POLL_INTERVAL:g} seconds"
            )
        if not 0 <= self.grace <= MAX_GRACE:  # also refuses nan
            raise ValueError(f"--grace must be between 0 and {MAX_GRACE:g} seconds")
        if min(self.max_log_lines, self.thread_pool_size) < 1:
            raise ValueError("--max-log-lines and --thread-pool-size must be >= 1")
        if not self.lease_seconds >= 1 or not self.cancel_wait_seconds >= 0:  # nan too
            raise ValueError("--lease must be >= 1 second, --cancel-wait >= 0")
        if not self.node_id or not self.node_id.isprintable() or len(self.node_id) > 200:
            raise ValueError("--node-id must be 1 to 200 printable characters")
        check_node_name("--node", self.node)
        for label in self.labels:
            check_node_name("--label", label)
        if len(self.labels) > MAX_LABELS:
            raise ValueError(f"--label: at most {MAX_LABELS} labels")
        if not 0 < self.sweep_interval <= MAX_POLL_INTERVAL:  # also refuses nan
            raise ValueError(
                f"--sweep-interval must be more than 0 and at most {MAX_POLL_INTERVAL:g} seconds"
            )

    def check_database_url(self) -> None:
        """Refuse a --db that is not PostgreSQL's (before anything opens it as a file path)."""
        if self.database_url and not self.database_url.startswith(POSTGRES_SCHEMES):
            raise ValueError("--db must be a postgresql://USER@HOST:PORT/DB URL")


# A day: a longer grace is a typo, and a stop nobody can wait for.
MAX_GRACE = 24 * 3600.0
# A task queued behind this engine's back would wait up to this long.
MAX_POLL_INTERVAL = 3600.0

# A node name or label: what a URL query, a log line and a table cell show as it is.
NODE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", re.ASCII)
MAX_LABELS = 32


def node_name_error(value: str) -> str | None:
    """Why ``value`` is no node name or label (None: it is one)."""
    if NODE_NAME.fullmatch(value):
        return None
    return "must be 1 to 64 ASCII letters, digits, '.', '_' or '-', starting with a letter or digit"


def check_node_name(option: str, value: str) -> None:
    error = node_name_error(value)
    if error is not None:
        raise ValueError(f"{option} {value!r} {error}")


def owner_node(owner: str) -> str:
    """The node an owner (a claim's ``node_id``, NODE:PID) belongs to: what comes before its
    last colon (an owner without one is a node name of its own)."""
    node, colon, _ = owner.rpartition(":")
    return node if colon else owner


_FIELDS = {f.name: f for f in fields(Settings)}


def default(name: str) -> Any:
    """The default of the field ``name``, for ``tasky serve`` to show and use: one copy."""
    found = _FIELDS[name]
    if found.default_factory is not MISSING:
        return found.default_factory()
    return found.default


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_addr(addr: str) -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT`` (loopback, unlike Go's all-interfaces default) or ``[v6]:PORT``."""
    host, sep, port = addr.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()):  # "²".isdigit() is True
        raise ValueError(f"address must look like HOST:PORT or :PORT, not {addr!r}")
    return (host.strip("[]") or "127.0.0.1"), int(port)
