"""Running the server: settings -> registry, store, app -> uvicorn.

This is where the parts meet: :func:`build_app` hands the task API (:mod:`tasky.api`) the route
groups of every other part, none of which the API imports.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import logging
import socket
from pathlib import Path
from typing import Any

import uvicorn

from tasky import clock, prom, ui
from tasky.access_log import AccessLog
from tasky.api import RouteGroup, TaskyApp, create_app
from tasky.api.views import task_detail
from tasky.callbacks.wiring import install as install_callbacks
from tasky.chains import routes as chains
from tasky.chains.definitions import configured_definitions
from tasky.chains.views import chain_detail
from tasky.config_file import load_workers
from tasky.engine.nodes import gone_from_here, name_taken
from tasky.gc_tuning import tune_for_serving
from tasky.logs import configure_logging
from tasky.own_files import file_roots, prepare_roots
from tasky.protocol import bounded_protocol, connection_cap
from tasky.retention import routes as retention
from tasky.schedules import routes as schedules
from tasky.settings import Settings, is_loopback
from tasky.shutdown import GracefulServer
from tasky.store import Store, create_store, prepare_store
from tasky.store.base import node_is_alive
from tasky.workers.registry import WorkerRegistry, default_registry

log = logging.getLogger("tasky")

EXAMPLES_MODULE = "tasky.workers.examples"


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


def route_groups() -> list[RouteGroup]:
    """Every part of the server beside the task API, in the order they are installed: the chain
    service before callbacks (which listen to chains), schedules (which start them) and
    retention (which prunes their tables)."""
    return [
        RouteGroup(routes=ui.routes()),
        RouteGroup(routes=prom.routes(), docs=prom.docs(), install=prom.install),
        RouteGroup(routes=chains.chain_routes(), docs=chains.chain_docs(), install=chains.install),
        RouteGroup(
            install=functools.partial(
                install_callbacks, show_task=task_detail, show_chain=chain_detail
            )
        ),
        RouteGroup(
            routes=schedules.schedule_routes(),
            docs=schedules.schedule_docs(),
            install=schedules.install,
        ),
        RouteGroup(
            routes=retention.retention_routes(),
            docs=retention.retention_docs(),
            install=retention.install,
        ),
    ]


def build_app(
    settings: Settings, *, registry: WorkerRegistry | None = None, store: Store | None = None
) -> TaskyApp:
    """The whole server's application: the task API with every route group."""
    return create_app(settings, route_groups(), registry=registry, store=store)


def serve(settings: Settings) -> None:
    """Run until interrupted.

    Problems found before listening (unsafe bind, store in use, bad worker module) raise
    ValueError, StoreLocked or ImportError so the CLI can print them plainly.
    """
    configure_logging(settings.log_format, settings.node_id)
    registry = build_registry(settings)
    # The config file's chain definitions, checked against these workers before listening.
    check_configured_chains(list(settings.config_files), registry)
    settings.check_database_url()
    store = create_store(settings.store_url)
    # Fail here, with a clear message, not inside the server's start-up (a store in use, a
    # database out of reach or newer than this code); stored tokens count as auth beyond loopback.
    settings.check(stored_tokens=prepare_store(store))
    if settings.database_url:  # SQLite's lock already keeps a second server out
        asyncio.run(check_node_name_free(settings))
    # Bound before anything is said or made: a port in use is the only thing then reported.
    listening = listening_socket(settings.host, settings.port)
    try:
        prepare_roots(settings)
        app = build_app(settings, registry=registry, store=store)
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
        tune_for_serving()  # start-up is done: what it made lives as long as the process
        GracefulServer(config, app, settings.grace).run(sockets=[listening])
    finally:
        listening.close()


async def check_node_name_free(settings: Settings) -> None:
    """ValueError when a live node on the store has this node's name (the start-up would be
    refused by the registration itself; this says so plainly, before anything listens)."""
    store = create_store(settings.store_url)
    await store.open()
    try:
        now = clock.now()
        for node in await store.list_nodes():
            if (
                node.name == settings.node
                and node_is_alive(node, settings.node_id, now - settings.lease_seconds)
                and not gone_from_here(node)
            ):
                raise ValueError(str(name_taken(settings, node, now)))
    finally:
        await store.close()


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to HOST:PORT for uvicorn to listen on; ValueError saying plainly why not."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise ValueError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock = socket.socket(family, kind, proto)
    # As uvicorn binds: a restarted server need not wait out the old connections' TIME_WAIT.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ValueError(
                f"port {port} is in use on {host}: another program (or another Tasky) listens "
                "there. Stop it, or pick another port with --addr HOST:PORT (TASKY_ADDR)"
            ) from None
        raise ValueError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


def check_configured_chains(paths: list[Path], registry: WorkerRegistry) -> None:
    """The config files' chains run on these workers; ValueError naming the first that cannot."""
    try:
        configured_definitions(paths, registry)
    except ValueError as exc:
        raise ValueError(f"{exc}{_examples_hint(paths, registry)}") from None


def _examples_hint(paths: list[Path], registry: WorkerRegistry) -> str:
    """How to load the example workers, when the chains would run with them.

    They are served by default, but not once --workers or --config names the workers: a chain
    copied from the docs that uses CopyFile then fails with a surprise.
    """
    missing = [w for w in default_registry() if registry.get(w.name) is None]
    if not missing:
        return ""
    widened = WorkerRegistry()
    for worker in [*registry, *missing]:
        widened.register(type(worker))
    try:
        configured_definitions(paths, widened)
    except ValueError:
        return ""
    names = ", ".join(w.name for w in missing)
    return (
        f". The example workers ({names}) are served only when neither --workers nor --config "
        f"is given: add --workers {EXAMPLES_MODULE} (TASKY_WORKERS={EXAMPLES_MODULE})"
    )


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
