"""The ASGI application: ``create_app(settings, groups)`` wires store, engine and routes.

The task API's own routes are here; every other part of the server comes in as a
:class:`~tasky.api.groups.RouteGroup` (see :func:`tasky.server.build_app`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from tasky.api import (
    batch,
    docs_page,
    events,
    handlers,
    index,
    key_pruner,
    metrics,
    schemas,
    targets,
    task_search,
    throughput,
)
from tasky.api.app_state import AppState
from tasky.api.groups import RouteGroup
from tasky.api.guard import RequestGuard
from tasky.api.openapi import build_openapi
from tasky.api.stream_caps import StreamCaps
from tasky.auth.routes import auth_routes
from tasky.auth.wiring import document_access, protect
from tasky.echo import clip
from tasky.engine import Engine
from tasky.engine.errors import (
    Draining,
    NoNodeForTarget,
    NotFound,
    QueueFull,
    Unsupported,
    WorkerDisabled,
)
from tasky.http.doc import Doc
from tasky.http.query import only_documented
from tasky.http.responses import ApiError, JSONResponse, error_response
from tasky.settings import Settings
from tasky.states import IllegalMove
from tasky.store import Store, create_store
from tasky.workers.registry import WorkerRegistry, default_registry

log = logging.getLogger("tasky.api")

PREFIX = "/tasky/v1"
Handler = Callable[[Request], Awaitable[Response]]

_E404 = (404,)
_TASK_ERRORS = (404, 409)

# (method, path under PREFIX, handler, documentation). Order: most frequent first.
API_ROUTES: list[tuple[str, str, Handler, Doc]] = [
    (
        "POST",
        "/workers/{name}",
        handlers.submit_task,
        Doc(
            "Create a task (body: the worker's config)",
            schemas.TaskCreated,
            ok_code=201,
            body="config",
            errors=(400, 404, 409, 413, 422, 429, 503),
            query=(
                ("timeout", "number", "Seconds before the task is stopped and Failed."),
                ("retries", "integer", "Extra attempts after a failure (exponential backoff)."),
                (
                    "callback",
                    "string",
                    "http(s) URL the finished task's record is POSTed to, signed "
                    "(docs/callbacks.md); needs a callback secret.",
                ),
                *targets.QUERY,
                targets.NODES_ALL,
            ),
            tags=("workers",),
            idempotent=True,
        ),
    ),
    (
        "POST",
        "/workers/{name}/batch",
        batch.submit_batch,
        Doc(
            "Create many tasks at once (body: a JSON array of the worker's configs); all or none",
            schemas.TasksCreated,
            ok_code=201,
            body="configs",
            errors=(400, 404, 409, 413, 422, 429, 503),
            query=batch.QUERY,
            tags=("workers",),
            invalid=schemas.BatchValidationErrorBody,
            idempotent=True,
        ),
    ),
    (
        "GET",
        "/tasks/{id}/status",
        handlers.task_status,
        Doc("A task's status and progress", schemas.TaskStatus, errors=_E404),
    ),
    (
        "GET",
        "/tasks/{id}/result",
        handlers.task_result,
        Doc(
            "A finished task's output (409 while it has not finished)",
            schemas.TaskResult,
            errors=_TASK_ERRORS,
        ),
    ),
    (
        "GET",
        "/tasks/{id}",
        handlers.get_task,
        Doc("The whole task record", schemas.TaskDetail, errors=_E404),
    ),
    (
        "GET",
        "/tasks",
        handlers.list_tasks,
        Doc(
            "List tasks, oldest first (order=desc: newest first), one page at a time",
            schemas.TaskList,
            errors=(400, 404),
            query=(
                ("status", "string", "Only tasks in this status."),
                ("worker", "string", "Only tasks of this worker."),
                ("chain", "string", "Only the steps of this chain."),
                ("limit", "integer", "Page size, 1 to 1000 (default 100)."),
                ("cursor", "string", "NextCursor of the previous page."),
                (
                    "order",
                    "string",
                    "asc: oldest first (default, as the seed listed them), or desc: newest "
                    "first (what the page and tasky tasks show).",
                ),
                *task_search.QUERY_DOCS,
            ),
        ),
    ),
    (
        "GET",
        "/tasks/{id}/logs",
        handlers.task_logs,
        Doc(
            "A task's log lines (also while it runs)",
            schemas.TaskLogs,
            errors=(400, 404),
            query=(
                ("after", "integer", "Only lines after this Seq (use Next)."),
                ("limit", "integer", "At most this many lines (default 1000)."),
            ),
        ),
    ),
    (
        "POST",
        "/tasks/{id}/cancel",
        handlers.cancel_task,
        Doc(
            "Cancel a task (202 while a running task is still stopping)",
            schemas.TaskStatus,
            errors=_TASK_ERRORS,
        ),
    ),
    (
        "POST",
        "/tasks/{id}/actions",
        handlers.task_action,
        Doc(
            "cancel, pause, resume or run (restart) a task (202 while a running task is still "
            "stopping, or while the node that runs it has not paused or resumed it yet)",
            schemas.TaskStatus,
            body=schemas.ActionRequest,
            errors=(400, 404, 409, 413, 422, 429, 503),
        ),
    ),
    (
        "PUT",
        "/tasks/{id}",
        handlers.update_task,
        Doc(
            "Replace the config of a task that has not started",
            schemas.TaskStatus,
            body="config",
            errors=(400, 404, 409, 413, 422),
        ),
    ),
    (
        "GET",
        "/tasks/{id}/statistics",
        handlers.task_statistics,
        Doc("Timing statistics of one task", schemas.TaskStatistics, errors=_E404),
    ),
    (
        "GET",
        "/nodes",
        handlers.list_nodes,
        Doc(
            "The nodes sharing this server's store: name, labels, workers, running tasks, "
            "last heartbeat, alive or not",
            schemas.NodeList,
            tags=("nodes",),
        ),
    ),
    (
        "GET",
        "/workers",
        handlers.list_workers,
        Doc("List workers", schemas.WorkerSummary, ok_list=True, tags=("workers",)),
    ),
    (
        "GET",
        "/workers/{name}/info",
        handlers.worker_info,
        Doc(
            "A worker's description, usage and config schema",
            schemas.WorkerSummary,
            errors=_E404,
            tags=("workers",),
        ),
    ),
    # What a newcomer tries first after POSTing to the same path: the worker itself.
    (
        "GET",
        "/workers/{name}",
        handlers.worker_info,
        Doc(
            "A worker's description, usage and config schema (as /workers/{name}/info)",
            schemas.WorkerSummary,
            errors=_E404,
            tags=("workers",),
        ),
    ),
    (
        "GET",
        "/workers/{name}/statistics",
        handlers.worker_statistics,
        Doc("A worker's statistics", schemas.WorkerStatistics, errors=_E404, tags=("workers",)),
    ),
    ("GET", "/metrics", metrics.metrics, metrics.DOC),
    # The seed's spelling of worker statistics.
    (
        "GET",
        "/{name}/statistics",
        handlers.worker_statistics,
        Doc(
            "A worker's statistics (the seed's path)",
            schemas.WorkerStatistics,
            errors=_E404,
            tags=("workers",),
        ),
    ),
]

# Each handler behind the check of its documented query parameters (the fast routes too).
_CHECKED: dict[Handler, Handler] = {
    handler: only_documented(handler, doc.query) for _, _, handler, doc in API_ROUTES
}


def _normalise_path(app: ASGIApp) -> ASGIApp:
    """Accept a trailing slash and /task/ for /tasks/ everywhere, without doubling the routes.

    Rewriting the path once is cheaper than matching twice as many route patterns per request.
    A plain function returning the app's coroutine: one coroutine less per request (its caller,
    RequestGuard, awaits what it returns).
    """

    def normalised(scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] == "http":
            path: str = scope["path"]
            new = path
            if len(new) > 1 and new.endswith("/"):
                new = new.rstrip("/") or "/"
            if new.startswith("/tasky/v1/task/") or new == "/tasky/v1/task":
                new = "/tasky/v1/tasks" + new[len("/tasky/v1/task") :]
            if new is not path:
                scope = dict(scope)
                scope["path"] = new
                scope["raw_path"] = new.encode()
        return app(scope, receive, send)

    return normalised


_SUBMIT = PREFIX + "/workers/"
_TASKS = PREFIX + "/tasks/"
_STATUS = "/status"


def _fast_routes(starlette: Starlette) -> ASGIApp:
    """Submit and status, the hot path, straight to their handlers; the rest through Starlette.

    Starlette's router and its two exception middlewares cost about as much per request as the
    whole submit handler. These two routes have one fixed shape each, so a string check finds
    them; the handlers and the error mapping (_EXCEPTION_HANDLERS) are the very same.
    """

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            method = scope["method"]
            found: tuple[Handler, dict[str, str]] | None = None
            if method == "POST" and path.startswith(_SUBMIT):
                name = path[len(_SUBMIT) :]
                if name and "/" not in name:
                    found = handlers.submit_task, {"name": name}
            elif method == "GET" and path.startswith(_TASKS) and path.endswith(_STATUS):
                task_id = path[len(_TASKS) : -len(_STATUS)]
                if task_id and "/" not in task_id:
                    found = handlers.task_status, {"id": task_id}
            if found is not None:
                scope["app"] = starlette
                scope["path_params"] = found[1]
                request = Request(scope, receive, send)
                # Without a query string the check of its names has nothing to look at: the
                # handler itself, one coroutine less (what only_documented's wrapper would do).
                handler = _CHECKED[found[0]] if scope["query_string"] else found[0]
                try:
                    response = await handler(request)
                except Exception as exc:
                    response = await _handle_error(request, exc)
                await response(scope, receive, send)
                return
        await starlette(scope, receive, send)

    return dispatch


async def _handle_error(request: Request, exc: Exception) -> Response:
    for cls in type(exc).__mro__:
        handler = _EXCEPTION_HANDLERS.get(cls)
        if handler is not None:
            return await handler(request, exc)
    raise exc  # not an Exception subclass the table knows: cannot happen, Exception is in it


class TaskyApp:
    """The ASGI callable: path normalisation and the auth guard around the Starlette app."""

    def __init__(self, starlette: Starlette, asgi: ASGIApp) -> None:
        self.starlette = starlette
        self.state = starlette.state
        self._asgi = asgi

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._asgi(scope, receive, send)


def create_app(
    settings: Settings,
    groups: Sequence[RouteGroup] = (),
    *,
    registry: WorkerRegistry | None = None,
    store: Store | None = None,
) -> TaskyApp:
    """The task API, its docs, live events and tokens, plus ``groups``, installed in order."""
    registry = registry if registry is not None else default_registry()
    store = store if store is not None else create_store(settings.store_url)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await store.open()
        engine = Engine(store, registry, settings)
        app.state.engine = engine
        try:
            await engine.start()
            for hook in app.state.startup_hooks:
                await hook(engine)
            yield
        finally:
            for hook in app.state.shutdown_hooks:
                await hook(engine)
            await engine.stop()
            await store.close()

    openapi_doc: dict[str, Any] = {}

    async def openapi(request: Request) -> JSONResponse:
        if not openapi_doc:
            documented = [(m, PREFIX + p, d) for m, p, _, d in API_ROUTES]
            documented += request.app.state.extra_docs
            openapi_doc.update(build_openapi(documented, registry))
            document_access(openapi_doc)
        # The docs page fetches it: the same headers as the page and everything it loads.
        return JSONResponse(openapi_doc, headers=docs_page.HEADERS)

    routes: list[BaseRoute] = [
        Route(PREFIX + path, _CHECKED[handler], methods=[method])
        for method, path, handler, _ in API_ROUTES
    ]
    routes += [Route(docs_page.OPENAPI_PATH, only_documented(openapi, ()), methods=["GET"])]
    routes += docs_page.routes() + index.routes()
    # Live events and the throughput read behind the statistics chart.
    routes += events.routes() + throughput.routes()
    for group in groups:
        routes += group.routes
    routes += auth_routes()

    starlette = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers=dict(_EXCEPTION_HANDLERS),
    )
    starlette.state = AppState()  # read on every request (state.engine): see tasky.api.app_state
    starlette.state.settings = settings
    starlette.state.registry = registry
    starlette.state.startup_hooks = []
    starlette.state.shutdown_hooks = []
    starlette.state.extra_docs = index.docs() + events.docs() + throughput.docs()
    starlette.state.stream_caps = StreamCaps(
        settings.max_streams, settings.max_streams_per_principal
    )
    key_pruner.install(starlette.state, store, settings.idempotency_window)
    for group in groups:
        starlette.state.extra_docs.extend(group.docs)
        if group.install is not None:
            group.install(starlette.state)
    # Who is calling and may they: every request, before any handler (tasky.auth.policy).
    guarded = protect(_fast_routes(starlette), starlette, settings, store)
    # Outermost: a browser-borne or misdirected request is refused before anything else reads it.
    return TaskyApp(starlette, RequestGuard(_normalise_path(guarded), settings))


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status_code, exc.message, **exc.extra)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = f"no such path: {clip(request.url.path, 200)}"
    elif exc.status_code == 405:
        message = f"method {request.method} is not allowed on {clip(request.url.path, 200)}"
    else:
        message = str(exc.detail)
    return JSONResponse({"Error": message}, status_code=exc.status_code, headers=exc.headers)


async def _not_found(request: Request, exc: Exception) -> Response:
    return error_response(404, str(exc))


async def _illegal_move(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, IllegalMove)
    return error_response(
        409, f"the task is {exc.current.value}: cannot {exc.wanted}", Status=exc.current.value
    )


async def _conflict(request: Request, exc: Exception) -> Response:
    return error_response(409, str(exc))


async def _unprocessable(request: Request, exc: Exception) -> Response:
    return error_response(422, str(exc))


async def _queue_full(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, QueueFull)
    response = error_response(429, str(exc))
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


async def _draining(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Draining)
    response = error_response(503, str(exc))
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal error; the server log has the details")


ErrorHandler = Callable[[Request, Exception], Awaitable[Response]]
# Exception -> answer, for Starlette and for the fast routes alike (the most specific class wins).
_EXCEPTION_HANDLERS: dict[Any, ErrorHandler] = {
    ApiError: _api_error,
    HTTPException: _http_error,
    NotFound: _not_found,
    IllegalMove: _illegal_move,
    Unsupported: _conflict,
    WorkerDisabled: _conflict,
    NoNodeForTarget: _unprocessable,
    QueueFull: _queue_full,
    Draining: _draining,
    Exception: _unexpected,
}
