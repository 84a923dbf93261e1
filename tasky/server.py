"""Running the server: settings -> registry, store, app -> uvicorn."""

from __future__ import annotations

import logging
import socket

import uvicorn

from tasky.api import TaskyApp, create_app
from tasky.api.events import end_streams
from tasky.chains.definitions import configured_definitions
from tasky.config_file import load_workers
from tasky.own_files import file_roots, prepare_roots
from tasky.settings import Settings
from tasky.store import SqliteStore
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
    registry = build_registry(settings)
    # The config file's chain definitions, checked against these workers before listening.
    configured_definitions(list(settings.config_files), registry)
    store = SqliteStore(settings.database_path)
    store.lock()  # fail here, with a clear message, not inside the server's start-up
    # Checked once the store is ours: stored tokens count as auth beyond loopback.
    settings.check(stored_tokens=store.count_tokens_now())
    prepare_roots(settings)
    app = create_app(settings, registry=registry, store=store)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
        server_header=False,
        timeout_graceful_shutdown=5,
    )
    log.info(
        "Tasky serving on http://%s:%d/tasky/v1/ (data in %s)",
        settings.host,
        settings.port,
        settings.data_dir,
    )
    _Server(config, app).run()


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: TaskyApp) -> None:
        super().__init__(config)
        self._app = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # Open event streams never end by themselves and would hold the graceful shutdown for its
        # whole timeout: end them first, then let uvicorn drain what is left.
        end_streams(getattr(self._app.state, "engine", None))
        await super().shutdown(sockets)
