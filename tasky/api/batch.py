"""Batch submit: ``POST /tasky/v1/workers/{name}/batch`` with a JSON array of configs.

All of the batch's tasks are created in one transaction (one commit), in order, or none of them:
an invalid config refuses the whole batch (422 naming each bad index and its fields), and so do
the worker's queue cap (429), a draining server (503) and a disabled worker (409), exactly as for
a single submit. The caps on a batch are its item count and its size in bytes (413); each config
also stays within the single-submit body limit.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from tasky.api import targets
from tasky.echo import clip
from tasky.engine import Engine
from tasky.engine.errors import BatchInvalid
from tasky.http.body import read_json
from tasky.http.query import float_param, int_param
from tasky.http.responses import ApiError, JSONResponse
from tasky.http.validation import MAX_FIELD_ERRORS
from tasky.idempotency import different_request, key_header, new_key
from tasky.store.records import batch_ids

# The query parameters of a batch: those of a single submit but the callback (one per task would
# need a registration each; submit such tasks one by one).
QUERY = (
    ("timeout", "number", "Seconds before each task is stopped and Failed."),
    ("retries", "integer", "Extra attempts after a failure, for each task."),
    *targets.QUERY,
)


async def submit_batch(request: Request) -> JSONResponse:
    engine: Engine = request.app.state.engine
    settings = engine.settings
    worker = engine.worker(request.path_params["name"])
    key = key_header(request.scope)
    configs = await read_json(request, settings.max_batch_bytes)
    if not isinstance(configs, list):
        raise ApiError(422, "the body must be a JSON array of configs (one object per task)")
    if len(configs) > settings.max_batch_items:
        raise ApiError(
            413,
            f"a batch holds at most {settings.max_batch_items} configs, this one {len(configs)}: "
            "send it in several batches",
        )
    declared = request.headers.get("content-length")
    if declared is None or int(declared) > settings.max_body_bytes:
        # Only a body larger than the single-submit limit can hold a config that exceeds it.
        _check_item_sizes(configs, settings.max_body_bytes)
    timeout: float | None = None
    retries: int | None = None
    target: str | None = None
    if request.scope["query_string"]:
        timeout = float_param(request, "timeout", 0, 30 * 24 * 3600, low_included=False)
        retries = int_param(request, "retries", 0, 100)
        target = targets.target_param(request)
    if key is not None:
        return await _submit_batch_with_key(
            request, worker.name, configs, key, timeout, retries, target
        )
    if target is not None:
        await targets.check_live(request, engine, worker.name, target)
    try:
        records = await engine.submit_many(
            worker.name,
            configs,
            timeout=timeout,
            retries=retries,
            targets=None if target is None else [target] * len(configs),
        )
    except BatchInvalid as exc:
        raise batch_invalid(exc) from None
    return JSONResponse({"TaskIds": [record.id for record in records]}, status_code=201)


async def _submit_batch_with_key(
    request: Request,
    worker: str,
    configs: list[Any],
    key: str,
    timeout: float | None,
    retries: int | None,
    target: str | None,
) -> JSONResponse:
    """As a keyed single submit (tasky.api.handlers): a retry is answered from a read before
    validation and admission (and before the target's liveness check), and the batch's write
    settles any race."""
    engine: Engine = request.app.state.engine
    query: dict[str, Any] = {"retries": retries, "timeout": timeout}
    if target is not None:  # keys remembered before targets existed keep their fingerprint
        query["target"] = target
    wanted = new_key(request, key, f"batch:{worker}", configs, query)
    found = await engine.store.find_key(wanted.principal, key, wanted.created_at)
    if found is None:
        if target is not None:
            await targets.check_live(request, engine, worker, target)
        try:
            created = await engine.submit_many_with_key(
                worker,
                configs,
                wanted,
                timeout=timeout,
                retries=retries,
                targets=None if target is None else [target] * len(configs),
            )
        except BatchInvalid as exc:
            raise batch_invalid(exc) from None
        if isinstance(created, list):
            return JSONResponse({"TaskIds": [record.id for record in created]}, status_code=201)
        found = created
    if found.fingerprint != wanted.fingerprint:
        raise different_request(wanted)
    return JSONResponse(
        {"TaskIds": batch_ids(found.target_id)},
        status_code=200,
        headers={"Idempotent-Replayed": "true"},
    )


def _check_item_sizes(configs: list[Any], limit: int) -> None:
    for index, config in enumerate(configs):
        if len(orjson.dumps(config)) > limit:
            raise ApiError(
                413,
                f"the config at index {index} is larger than the limit of {limit} bytes "
                "for one task's config",
                Index=index,
            )


def batch_invalid(exc: BatchInvalid) -> ApiError:
    """422 naming each bad index (``Indexes``) and, for the first ones, their fields
    (``Fields``, each ``field`` spelled ``[index].name``)."""
    fields: list[dict[str, Any]] = []
    for index in sorted(exc.errors):
        errors: list[Any] = exc.errors[index].errors(
            include_url=False, include_context=False, include_input=False
        )
        for err in errors:
            if len(fields) == MAX_FIELD_ERRORS:
                break
            name = ".".join(str(p) for p in err["loc"])
            fields.append(
                {
                    "field": clip(f"[{index}]" + (f".{name}" if name else ""), 100),
                    "message": clip(err["msg"], 300),
                    "type": err["type"],
                    "index": index,
                }
            )
    indexes = sorted(exc.errors)
    summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    return ApiError(
        422,
        f"invalid config at index {_listed(indexes)}; no task was created: {summary}",
        Fields=fields,
        Indexes=indexes,
    )


def _listed(indexes: list[int]) -> str:
    shown = ", ".join(str(i) for i in indexes[:20])
    return shown + (f" and {len(indexes) - 20} more" if len(indexes) > 20 else "")
