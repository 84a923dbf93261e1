"""Route handlers. They parse and validate the request, call the engine, and shape the answer.

Handlers are plain Starlette endpoints (not FastAPI): submit and status are the hot path, and a
trivial FastAPI endpoint costs about 2.5x a Starlette one on this kind of machine.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request

from tasky.api import targets, views
from tasky.api.task_search import task_search
from tasky.callbacks.wiring import accepted_url, callback_view, with_callback
from tasky.echo import shown
from tasky.engine import Engine
from tasky.engine.errors import BatchInvalid
from tasky.http.body import read_json
from tasky.http.query import cursor_param, float_param, int_param
from tasky.http.responses import ApiError, Created, JSONResponse
from tasky.http.validation import validation_error
from tasky.idempotency import key_header, new_key, replay
from tasky.ids import new_id
from tasky.states import FINISHED, Status
from tasky.store.records import IdempotencyRecord, TaskRecord

MAX_PAGE = 1000
MAX_TASK_TIMEOUT = 30 * 24 * 3600  # seconds: 30 days
TASK_LOCATION = "/tasky/v1/tasks/"


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


# -- workers ----------------------------------------------------------------------------------
async def list_workers(request: Request) -> JSONResponse:
    engine = _engine(request)
    return JSONResponse([views.worker_view(w) for w in engine.registry])


async def submit_task(request: Request) -> JSONResponse:
    engine = _engine(request)
    worker = engine.worker(request.path_params["name"])
    config = await read_json(request, engine.settings.max_body_bytes, empty={})
    if not isinstance(config, dict):
        raise ApiError(422, "the body must be a JSON object (the task's config)")
    timeout: float | None = None
    retries: int | None = None
    callback: str | None = None
    target: str | None = None
    if request.scope["query_string"]:  # parsing an absent query string costs as much as a submit
        timeout = float_param(
            request,
            "timeout",
            0,
            MAX_TASK_TIMEOUT,
            low_included=False,
            unit="seconds",
            high_text="30 days",
        )
        retries = int_param(request, "retries", 0, 100)
        if "callback" in request.query_params:
            callback = accepted_url(
                request.app.state, request.query_params["callback"], status_code=400
            )
        if targets.fan_out(request):
            return await _submit_everywhere(
                request, worker.name, config, timeout, retries, callback
            )
        target = targets.target_param(request)
    key = key_header(request.scope)
    if target is not None and key is None:
        await targets.check_live(request, engine, worker.name, target)
    if key is not None:
        return await _submit_with_key(
            request, worker.name, config, key, timeout, retries, callback, target
        )
    try:
        if callback is None:
            record = await engine.submit(
                worker.name,
                config,
                timeout=timeout,
                retries=retries,
                target=target,
                answer_first=True,
            )
        else:
            task_id = new_id()
            record = await with_callback(
                request.app.state,
                "task",
                task_id,
                callback,
                lambda: engine.submit(
                    worker.name,
                    config,
                    timeout=timeout,
                    retries=retries,
                    task_id=task_id,
                    target=target,
                ),
            )
    except ValidationError as exc:
        raise validation_error(exc) from None
    return Created({"TaskId": record.id}, TASK_LOCATION + record.id)


async def _submit_everywhere(
    request: Request,
    worker: str,
    config: dict[str, Any],
    timeout: float | None,
    retries: int | None,
    callback: str | None,
) -> JSONResponse:
    """``?nodes=all``: one task per live node serving the worker, all created or none."""
    if callback is not None:
        raise ApiError(400, "nodes=all cannot be combined with callback: submit per node")
    if key_header(request.scope) is not None:
        raise ApiError(400, "nodes=all cannot be combined with an Idempotency-Key header yet")
    engine = _engine(request)
    try:
        created = await engine.submit_everywhere(worker, config, timeout=timeout, retries=retries)
    except BatchInvalid as exc:  # every task has the same config: one error says it
        raise validation_error(next(iter(exc.errors.values()))) from None
    return JSONResponse(
        {"Tasks": {node: record.id for node, record in created.items()}}, status_code=201
    )


async def _submit_with_key(
    request: Request,
    worker: str,
    config: dict[str, Any],
    key: str,
    timeout: float | None,
    retries: int | None,
    callback: str | None,
    target: str | None,
) -> JSONResponse:
    engine = _engine(request)
    query: dict[str, Any] = {"retries": retries, "timeout": timeout, "callback": callback}
    if target is not None:  # keys remembered before targets existed keep their fingerprint
        query["target"] = target
    wanted = new_key(request, key, f"worker:{worker}", config, query)
    # A retry is answered from a read, before validation and admission (a full queue must not
    # refuse the retry of a task that was accepted); the write below settles any race.
    found = await engine.store.find_key(wanted.principal, key, wanted.created_at)
    if found is None:
        if target is not None:  # a retry is answered even if the node has gone since
            await targets.check_live(request, engine, worker, target)
        task_id = new_id()

        def create() -> Awaitable[TaskRecord | IdempotencyRecord]:
            return engine.submit_with_key(
                worker,
                config,
                wanted,
                timeout=timeout,
                retries=retries,
                task_id=task_id,
                target=target,
            )

        try:
            if callback is None:
                created = await create()
            else:
                created = await with_callback(request.app.state, "task", task_id, callback, create)
                if not isinstance(created, TaskRecord):  # a racing request won: no task here
                    await request.app.state.callbacks.unregister("task", task_id)
        except ValidationError as exc:
            raise validation_error(exc) from None
        if isinstance(created, TaskRecord):
            return Created({"TaskId": created.id}, TASK_LOCATION + created.id)
        found = created
    return replay(found, wanted, "TaskId", TASK_LOCATION)


async def list_nodes(request: Request) -> JSONResponse:
    engine = _engine(request)
    return JSONResponse({"Nodes": [views.node_view(n, alive) for n, alive in await engine.nodes()]})


async def worker_info(request: Request) -> JSONResponse:
    worker = _engine(request).worker(request.path_params["name"])
    return JSONResponse(views.worker_view(worker, detailed=True))


async def worker_statistics(request: Request) -> JSONResponse:
    engine = _engine(request)
    worker = engine.worker(request.path_params["name"])
    stats = await engine.worker_stats(worker.name)
    return JSONResponse(
        views.worker_statistics(
            stats, engine.running_count(worker.name), await engine.queued_count(worker.name)
        )
    )


# -- tasks ------------------------------------------------------------------------------------
async def list_tasks(request: Request) -> JSONResponse:
    engine = _engine(request)
    params = request.query_params
    status = None
    if params.get("status"):
        try:
            status = Status(params["status"].capitalize())
        except ValueError:
            allowed = ", ".join(s.value for s in Status)
            raise ApiError(
                400, f"unknown status {shown(params['status'])}; use one of {allowed}"
            ) from None
    limit = int_param(request, "limit", 1, MAX_PAGE, 100)
    cursor = cursor_param(request)
    order = params.get("order", "asc")
    if order not in ("asc", "desc"):
        raise ApiError(400, "query parameter order must be asc or desc")
    search = task_search(request)
    worker = params.get("worker") or None
    page = await engine.list_tasks(
        status=status,
        worker=worker,
        chain_id=params.get("chain") or None,
        limit=limit or 100,
        cursor=cursor,
        descending=order == "desc",
        **search.store_filters(),
    )
    positions = await engine.queue_positions(page.tasks)
    return JSONResponse(
        {
            "Tasks": [views.task_summary(t, positions.get(t.id)) for t in page.tasks],
            "NextCursor": None if page.next_cursor is None else str(page.next_cursor),
        }
    )


async def get_task(request: Request) -> JSONResponse:
    engine = _engine(request)
    record = await engine.get(request.path_params["id"])
    attempts = await engine.attempts(record.id)
    worker = engine.registry.get(record.worker)
    position = (await engine.queue_positions([record])).get(record.id)
    out = views.task_detail(_with_live_progress(engine, record), attempts, worker, position)
    out["Callback"] = callback_view(await engine.store.get_callback("task", record.id))
    return JSONResponse(out)


def _with_live_progress(engine: Engine, record: Any) -> Any:
    live = engine.live_progress(record.id)
    if live is not None:
        record.progress, record.progress_message = live
    return record


async def task_status(request: Request) -> JSONResponse:
    engine = _engine(request)
    record = await engine.get(request.path_params["id"])
    out = views.task_status(_with_live_progress(engine, record))
    # A Queued task's place in its worker's queue (1: the next to start); null otherwise.
    out["QueuePosition"] = (await engine.queue_positions([record])).get(record.id)
    return JSONResponse(out)


async def task_result(request: Request) -> JSONResponse:
    record = await _engine(request).get(request.path_params["id"])
    if record.status not in FINISHED:
        raise ApiError(
            409,
            f"task {record.id} is {record.status.value}; its result is ready once it has finished",
            TaskId=record.id,
            Status=record.status.value,
        )
    out: dict[str, Any] = {"TaskId": record.id, "Status": record.status.value}
    out["Output"] = views.output_of(record.result if record.status is Status.COMPLETED else None)
    if record.error is not None:
        out["Error"] = record.error
    return JSONResponse(out)


async def task_logs(request: Request) -> JSONResponse:
    engine = _engine(request)
    task_id = request.path_params["id"]
    after = int_param(request, "after", 0, default=0) or 0
    limit = int_param(request, "limit", 1, 10_000, 1000) or 1000
    lines = await engine.logs(task_id, after, limit)
    record = await engine.get(task_id)
    return JSONResponse(
        {
            "TaskId": task_id,
            "Status": record.status.value,
            "Lines": [{"Seq": ln.seq, "Time": ln.ts, "Line": ln.line} for ln in lines],
            "Next": lines[-1].seq if lines else after,
            "Dropped": record.logs_dropped,
        }
    )


async def task_statistics(request: Request) -> JSONResponse:
    engine = _engine(request)
    record = await engine.get(request.path_params["id"])
    attempts = await engine.attempts(record.id)
    return JSONResponse(views.task_statistics(record, attempts))


def _control_response(record: Any) -> JSONResponse:
    # 202: the request is accepted but the work has not stopped yet (it shows Canceled once it has).
    code = 202 if record.status is Status.RUNNING else 200
    return JSONResponse(views.task_status(record), status_code=code)


async def cancel_task(request: Request) -> JSONResponse:
    record = await _engine(request).cancel(request.path_params["id"])
    return _control_response(record)


async def task_action(request: Request) -> JSONResponse:
    engine = _engine(request)
    await engine.get(request.path_params["id"])  # 404 before body errors
    body = await read_json(request, request.app.state.settings.max_body_bytes)
    if not isinstance(body, dict) or not isinstance(body.get("action"), str):
        raise ApiError(422, 'the body must be {"action": "cancel" | "pause" | "resume" | "run"}')
    action = body["action"].lower()
    if action not in ("cancel", "pause", "resume", "run"):
        raise ApiError(
            422, f"unknown action {shown(body['action'])}; use cancel, pause, resume or run"
        )
    record = await engine.action(request.path_params["id"], action)
    if action == "cancel":
        return _control_response(record)
    # 202: asked of the node that runs the task, which has not applied it yet.
    pending = (action == "pause" and record.status is Status.RUNNING) or (
        action == "resume" and record.status is Status.PAUSED
    )
    return JSONResponse(views.task_status(record), status_code=202 if pending else 200)


async def update_task(request: Request) -> JSONResponse:
    engine = _engine(request)
    await engine.get(request.path_params["id"])
    config = await read_json(request, request.app.state.settings.max_body_bytes)
    if not isinstance(config, dict):
        raise ApiError(422, "the body must be a JSON object (the task's new config)")
    try:
        record = await engine.update_config(request.path_params["id"], config)
    except ValidationError as exc:
        raise validation_error(exc) from None
    return JSONResponse(
        {
            "TaskId": record.id,
            "Status": record.status.value,
            "Config": views.shown_config(record, engine.registry.get(record.worker)),
        }
    )
