"""Running the server: settings -> registry, store, app -> uvicorn."""

from __future__ import annotations

import logging
from typing import Any

import uvicorn

from tasky.access_log import AccessLog
from tasky.api import create_app
from tasky.chains.definitions import configured_definitions
from tasky.config_file import load_workers
from tasky.logs import configure_logging
from tasky.own_files import file_roots, prepare_roots
from tasky.protocol import bounded_protocol, connection_cap
from tasky.settings import Settings, is_loopback
from tasky.shutdown import GracefulServer
from tasky.store import create_store, prepare_store
from tasky.workers.registry import WorkerRegistry, default_registry

log = logging.getLogger("tasky")


def build_registry(settings: Settings) -> WorkerRegistry:
    if not settings.worker_modules and not settings.config_files:
        return default_registry()
    registry = WorkerRegistry()
    for module in settings.worker_modules:
        registry.register_module(module)
    for path in settings.config_files:
        # Command workers declared in TOML; their path parameters are confined to the roots.
        for cls in load_workers(path, file_roots(settings)):
            registry.register(cls)
    return registry


def serve(settings: Settings) -> None:
    """Run until interrupted.

    Problems found before listening (unsafe bind, store in use, bad worker module) raise
    ValueError, StoreLocked or ImportError so the CLI can print them plainly.
    """
    configure_logging(settings.log_format, settings.node_id)
    registry = build_registry(settings)
    # The config file's chain definitions, checked against these workers before listening.
    configured_definitions(list(settings.config_files), registry)
    settings.check_database_url()
    store = create_store(settings.store_url)
    # Fail here, with a clear message, not inside the server's start-up (a store in use, a
    # database out of reach or newer than this code); stored tokens count as auth beyond loopback.
    settings.check(stored_tokens=prepare_store(store))
    prepare_roots(settings)
    app = create_app(settings, registry=registry, store=store)
    config = uvicorn.Config(
        AccessLog(app) if settings.access_log else app, **uvicorn_options(settings)
    )
    scheme = "https" if settings.tls_cert else "http"
    log.info(
        "Tasky serving on %s://%s:%d/tasky/v1/ (data in %s)",
        scheme,
        settings.host,
        settings.port,
        settings.store_description,
    )
    warning = plain_http_warning(settings)
    if warning:
        log.warning("%s", warning)
    GracefulServer(config, app, settings.grace).run()


def plain_http_warning(settings: Settings) -> str | None:
    """What to log when tokens and task data would cross a network in clear text."""
    if is_loopback(settings.host) or settings.tls_cert:
        return None
    return (
        f"listening on {settings.host} without TLS: tokens and task data cross the network in "
        "clear text. Serve HTTPS with --tls-cert/--tls-key (TASKY_TLS_CERT/TASKY_TLS_KEY), or "
        "listen on 127.0.0.1 behind a TLS reverse proxy and name it with --forwarded-allow-ips"
    )


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's configuration: the HTTP protocol with its bounds, TLS, proxy trust."""
    return {
        "host": settings.host,
        "port": settings.port,
        "loop": "uvloop",
        "http": bounded_protocol(
            settings.header_timeout,
            settings.body_timeout,
            connection_cap(settings.max_connections),
        ),
        "lifespan": "on",
        # Tasky's own access log (tasky.access_log) replaces uvicorn's; uvicorn's other lines go
        # through the handler of tasky.logs, which its own logging config would bypass.
        "access_log": False,
        "log_config": None,
        "log_level": "warning",
        "server_header": False,
        "timeout_graceful_shutdown": 5,
        "timeout_keep_alive": settings.keep_alive_timeout,
        "ssl_certfile": settings.tls_cert,
        "ssl_keyfile": settings.tls_key,
        # X-Forwarded-For/-Proto are believed from the named proxies only, never by default:
        # otherwise any local client could claim to have come over HTTPS or from elsewhere.
        "proxy_headers": bool(settings.forwarded_allow_ips),
        "forwarded_allow_ips": settings.forwarded_allow_ips or None,
    }
