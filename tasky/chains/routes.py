"""The chain routes under /tasky/v1, their OpenAPI entries, and how they plug into the app.

The server's wiring (:mod:`tasky.server`) hands them to ``create_app`` as a route group:
:func:`chain_routes`, :func:`chain_docs`, and :func:`install`, which runs on the app's state: the
chain service starts after the engine (a startup hook) and stops before it.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from tasky.callbacks.wiring import accepted_url, callback_view, with_callback
from tasky.chains import limits, schemas, views
from tasky.chains.definitions import DefinitionReadOnly, Definitions
from tasky.chains.model import ChainSpec, DefinitionError
from tasky.chains.runner import ChainConflict, ChainRunner
from tasky.chains.validate import check_definition
from tasky.echo import shown
from tasky.engine import Engine
from tasky.http.body import read_json
from tasky.http.doc import Doc, DocEntry
from tasky.http.query import cursor_param, int_param, only_documented
from tasky.http.responses import ApiError, JSONResponse
from tasky.idempotency import key_header, new_key, replay
from tasky.ids import new_id
from tasky.states import Status
from tasky.store.chain_records import ChainRecord
from tasky.store.records import IdempotencyRecord

PREFIX = "/tasky/v1"
ACTIONS = ("cancel", "pause", "resume", "restart")
MAX_PAGE = 1000
STEPS_PAGE = 100


class ChainService:
    """What the routes use: the runner and the named definitions."""

    def __init__(self, runner: ChainRunner, definitions: Definitions) -> None:
        self.runner = runner
        self.definitions = definitions


def _service(request: Request) -> ChainService:
    service: ChainService | None = getattr(request.app.state, "chains", None)
    if service is None:
        raise ApiError(503, "the chain service is not running (the server is starting or stopping)")
    return service


def _unprocessable(exc: DefinitionError) -> ApiError:
    return ApiError(422, str(exc), Step=exc.step, Fields=exc.fields)


async def _body(request: Request, *, empty: Any = None) -> Any:
    limit: int = request.app.state.settings.max_body_bytes
    return await read_json(request, limit, empty=empty)


async def _definition_body(request: Request) -> Any:
    """A chain definition's body: up to its own caps (a long chain may be larger than other
    bodies), which :func:`limits.check_definition_size` then checks part by part."""
    settings = request.app.state.settings
    room = settings.max_chain_definition_bytes + settings.max_chain_params_bytes + 1024
    return await read_json(request, max(settings.max_body_bytes, room))


# -- chains -----------------------------------------------------------------------------------
async def create_chain(request: Request) -> JSONResponse:
    service = _service(request)
    raw = await _definition_body(request)
    limits.check_definition_size(raw, request.app.state.settings)
    values = raw.get("parameters") if isinstance(raw, dict) else None
    try:
        spec = check_definition(
            raw,
            service.runner.engine.registry,
            parameters=values if isinstance(values, dict) else {},
        )
    except DefinitionError as exc:
        raise _unprocessable(exc) from None
    return await _start(
        request, service, spec, spec.parameters, "chain", raw, callback=spec.callback
    )


async def _start(
    request: Request,
    service: ChainService,
    spec: ChainSpec,
    values: dict[str, Any],
    target: str,
    body: Any,
    definition: str | None = None,
    callback: str | None = None,
) -> JSONResponse:
    """Create the chain, its callback stored first; with an ``Idempotency-Key``, answer a retry
    with the first chain instead."""
    url = None if callback is None else accepted_url(request.app.state, callback, status_code=422)
    key = key_header(request.scope)
    wanted = None if key is None else new_key(request, key, target, body)
    if wanted is not None:
        store = service.runner.engine.store
        found = await store.find_key(wanted.principal, wanted.key, wanted.created_at)
        if found is not None:
            return replay(found, wanted, "ChainId", f"{PREFIX}/chains/")
    chain_id = new_id()

    def create() -> Awaitable[ChainRecord | IdempotencyRecord]:
        return service.runner.create_with_key(
            spec, values, wanted, definition=definition, chain_id=chain_id
        )

    if url is None:
        created = await create()
    else:
        created = await with_callback(request.app.state, "chain", chain_id, url, create)
    if isinstance(created, ChainRecord):
        return _created(created.id)
    assert wanted is not None  # only a key can give back an earlier request's record
    if url is not None:  # a racing request with the same key won: no chain here
        await request.app.state.callbacks.unregister("chain", chain_id)
    return replay(created, wanted, "ChainId", f"{PREFIX}/chains/")


def _created(chain_id: str) -> JSONResponse:
    return JSONResponse(
        {"ChainId": chain_id},
        status_code=201,
        headers={"Location": f"{PREFIX}/chains/{chain_id}"},
    )


# A chain runs from the moment it is created: it is never Queued (its steps may be).
CHAIN_STATUSES = (Status.RUNNING, Status.PAUSED, Status.COMPLETED, Status.FAILED, Status.CANCELED)


async def list_chains(request: Request) -> JSONResponse:
    service = _service(request)
    status = None
    raw_status = request.query_params.get("status")
    if raw_status:
        status = next((s for s in CHAIN_STATUSES if s.value.lower() == raw_status.lower()), None)
        if status is None:
            allowed = ", ".join(s.value for s in CHAIN_STATUSES)
            message = f"a chain's status is one of {allowed}, not {shown(raw_status)}"
            raise ApiError(400, message)
    order = request.query_params.get("order", "asc")
    if order not in ("asc", "desc"):
        raise ApiError(400, "query parameter order must be asc or desc")
    page = await service.runner.list_chains(
        status=status,
        limit=int_param(request, "limit", 1, MAX_PAGE) or 100,
        cursor=cursor_param(request),
        descending=order == "desc",
    )
    return JSONResponse(
        {
            "Chains": [views.chain_summary(c) for c in page.chains],
            "NextCursor": None if page.next_cursor is None else str(page.next_cursor),
        }
    )


async def _detail(
    runner: ChainRunner, chain_id: str, steps: int = views.DETAIL_STEPS
) -> dict[str, Any]:
    page = await runner.steps_page(chain_id, limit=steps)
    counts = await runner.step_counts(page.chain.id)
    return views.chain_page_detail(page, counts, runner.engine.registry)


async def get_chain(request: Request) -> JSONResponse:
    runner = _service(request).runner
    steps = int_param(request, "steps", 1, views.DETAIL_STEPS, default=views.DETAIL_STEPS)
    assert steps is not None
    out = await _detail(runner, request.path_params["id"], steps)
    out["Callback"] = callback_view(await runner.engine.store.get_callback("chain", out["ChainId"]))
    return JSONResponse(out)


async def get_chain_steps(request: Request) -> JSONResponse:
    runner = _service(request).runner
    page = await runner.steps_page(
        request.path_params["id"],
        cursor=cursor_param(request),
        limit=int_param(request, "limit", 1, MAX_PAGE) or STEPS_PAGE,
    )
    return JSONResponse(views.steps_page(page))


async def chain_action(request: Request) -> JSONResponse:
    runner = _service(request).runner
    chain_id = request.path_params["id"]
    await runner.get(chain_id)  # 404 before body errors
    body = await _body(request)
    action = body.get("action") if isinstance(body, dict) else None
    if not isinstance(action, str) or action.lower() not in ACTIONS:
        raise ApiError(
            422, f'the body must be {{"action": one of {", ".join(ACTIONS)}}}', Fields=[]
        )
    try:
        await runner.action(chain_id, action.lower())
    except ChainConflict as exc:
        raise ApiError(409, str(exc), Status=exc.current.value) from None
    body = await _detail(runner, chain_id)
    # As for a task: 202 while a canceled chain's running step has not stopped yet.
    stopping = action.lower() == "cancel" and body["StepCounts"].get("Running", 0) > 0
    return JSONResponse(body, status_code=202 if stopping else 200)


# -- named definitions ------------------------------------------------------------------------
async def list_definitions(request: Request) -> JSONResponse:
    service = _service(request)
    found = await service.definitions.list_definitions()
    registry = service.runner.engine.registry
    return JSONResponse(
        {"Definitions": [views.definition_view(d, registry, full=False) for d in found]}
    )


async def get_definition(request: Request) -> JSONResponse:
    service = _service(request)
    record = await service.definitions.get(request.path_params["name"])
    return JSONResponse(views.definition_view(record, service.runner.engine.registry))


async def put_definition(request: Request) -> JSONResponse:
    service = _service(request)
    definitions = service.definitions
    raw = await _definition_body(request)
    limits.check_definition_size(raw, request.app.state.settings)
    try:
        created, record = await definitions.put(request.path_params["name"], raw)
    except DefinitionError as exc:
        raise _unprocessable(exc) from None
    except DefinitionReadOnly as exc:
        raise ApiError(409, str(exc)) from None
    shown = views.definition_view(record, service.runner.engine.registry)
    return JSONResponse(shown, status_code=201 if created else 200)


async def delete_definition(request: Request) -> JSONResponse:
    name = request.path_params["name"]
    try:
        await _service(request).definitions.delete(name)
    except DefinitionReadOnly as exc:
        raise ApiError(409, str(exc)) from None
    return JSONResponse({"Name": name, "Deleted": True})


async def start_definition(request: Request) -> JSONResponse:
    service = _service(request)
    name = request.path_params["name"]
    await service.definitions.get(name)  # 404 before body errors
    body = await _body(request, empty={})
    if not isinstance(body, dict):
        raise ApiError(422, 'the body must be {"parameters": {...}} (or empty)', Fields=[])
    extra = sorted(set(body) - {"parameters", "callback"})
    if extra:
        raise ApiError(
            422, f"unknown field(s) {', '.join(extra)}; only parameters and callback", Fields=[]
        )
    limits.check_parameters(body.get("parameters"), request.app.state.settings)
    try:
        spec, values = await service.definitions.prepare(name, body.get("parameters"))
    except DefinitionError as exc:
        raise _unprocessable(exc) from None
    # The start's callback wins over the definition's.
    url = body["callback"] if body.get("callback") is not None else spec.callback
    return await _start(
        request, service, spec, values, f"definition:{name}", body, name, callback=url
    )


_CHAIN_ERRORS = (404,)
_BODY_ERRORS = (400, 413, 422)


def _docs() -> list[tuple[str, str, Any, Doc]]:
    tags = ("chains",)
    return [
        (
            "POST",
            "/chains",
            create_chain,
            Doc(
                "Start a chain of steps (answers at once with its id)",
                schemas.ChainCreated,
                ok_code=201,
                body=ChainSpec,
                errors=(*_BODY_ERRORS, 503),
                idempotent=True,
                tags=tags,
            ),
        ),
        (
            "GET",
            "/chains",
            list_chains,
            Doc(
                "List chains, oldest first, one page at a time",
                schemas.ChainList,
                errors=(400,),
                query=(
                    (
                        "status",
                        "string",
                        "Only chains in this status: Running, Paused, Completed, Failed or "
                        "Canceled (a chain is never Queued).",
                    ),
                    ("limit", "integer", "Page size, 1 to 1000 (default 100)."),
                    ("cursor", "string", "NextCursor of the previous page."),
                    ("order", "string", "asc: oldest first (default), or desc: newest first."),
                ),
                tags=tags,
            ),
        ),
        (
            "GET",
            "/chains/{id}",
            get_chain,
            Doc(
                "A chain's status and result, how many steps are in each status, and each "
                f"step's status, task, timing and output (the first {views.DETAIL_STEPS} steps; "
                "GET /chains/{id}/steps pages through the rest)",
                schemas.ChainDetail,
                errors=(400, *_CHAIN_ERRORS),
                query=(
                    (
                        "steps",
                        "integer",
                        "How many steps the answer holds at most, 1 to "
                        f"{views.DETAIL_STEPS} (default {views.DETAIL_STEPS}).",
                    ),
                ),
                tags=tags,
            ),
        ),
        (
            "GET",
            "/chains/{id}/steps",
            get_chain_steps,
            Doc(
                "A chain's steps one page at a time, in definition order (for long chains)",
                schemas.StepPage,
                errors=(400, 404),
                query=(
                    ("limit", "integer", f"Page size, 1 to {MAX_PAGE} (default {STEPS_PAGE})."),
                    ("cursor", "string", "NextCursor of the previous page (or StepsNextCursor)."),
                ),
                tags=tags,
            ),
        ),
        (
            "POST",
            "/chains/{id}/actions",
            chain_action,
            Doc(
                "cancel, pause, resume or restart (from the failed step) a chain "
                "(cancel: 202 while a running step is still stopping)",
                schemas.ChainDetail,
                body=schemas.ChainActionRequest,
                errors=(400, 404, 409, 413, 422, 503),
                tags=tags,
            ),
        ),
        (
            "GET",
            "/chain-definitions",
            list_definitions,
            Doc("List named chain definitions", schemas.DefinitionList, tags=tags),
        ),
        (
            "GET",
            "/chain-definitions/{name}",
            get_definition,
            Doc("A named chain definition", schemas.DefinitionDetail, errors=(404,), tags=tags),
        ),
        (
            "PUT",
            "/chain-definitions/{name}",
            put_definition,
            Doc(
                "Save a named chain definition (201 when new, 200 when replaced)",
                schemas.DefinitionDetail,
                body=ChainSpec,
                errors=(400, 409, 413, 422),
                tags=tags,
            ),
        ),
        (
            "DELETE",
            "/chain-definitions/{name}",
            delete_definition,
            Doc(
                "Delete a named chain definition",
                schemas.DefinitionDeleted,
                errors=(404, 409),
                tags=tags,
            ),
        ),
        (
            "POST",
            "/chain-definitions/{name}/start",
            start_definition,
            Doc(
                "Start a named chain definition with parameters",
                schemas.ChainCreated,
                ok_code=201,
                body=schemas.StartRequest,
                errors=(400, 404, 413, 422, 503),
                idempotent=True,
                tags=tags,
            ),
        ),
    ]


def chain_routes() -> list[BaseRoute]:
    return [
        Route(PREFIX + path, only_documented(handler, doc.query), methods=[method])
        for method, path, handler, doc in _docs()
    ]


def chain_docs() -> list[DocEntry]:
    return [(method, PREFIX + path, doc) for method, path, _, doc in _docs()]


def install(state: Any) -> None:
    """Start and stop the chain service with the app (``app.state``)."""

    async def start(engine: Engine) -> None:
        store = engine.store.chains
        definitions = Definitions(store, engine.registry)
        definitions.load_config(list(engine.settings.config_files))
        runner = ChainRunner(engine, store)
        state.chains = ChainService(runner, definitions)
        await runner.start()

    async def stop(engine: Engine) -> None:
        service: ChainService | None = getattr(state, "chains", None)
        if service is not None:
            await service.runner.stop()
            state.chains = None

    state.startup_hooks.append(start)
    state.shutdown_hooks.append(stop)
