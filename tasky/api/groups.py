"""Route groups: the parts of the server beside the task API, handed to ``create_app``.

Chains, schedules, retention, Prometheus metrics, callbacks and the web page build on the task
API's helpers (:mod:`tasky.http`) and on the engine, never the other way round: the API does not
import them. The server's wiring (:mod:`tasky.server`) lists them, so an app can also be built
with some or none of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from starlette.datastructures import State
from starlette.routing import BaseRoute

from tasky.http.doc import DocEntry


@dataclass(frozen=True, slots=True)
class RouteGroup:
    """One part of the server: its routes, their OpenAPI entries, and its set-up.

    ``install`` runs once on the new app's ``state``; it may add start and stop hooks
    (``state.startup_hooks``, ``state.shutdown_hooks``), which get the engine. Groups are
    installed in the order given, so a group's hooks can rely on those of the groups before it.
    """

    routes: Sequence[BaseRoute] = ()
    docs: Sequence[DocEntry] = ()
    install: Callable[[State], None] | None = None
