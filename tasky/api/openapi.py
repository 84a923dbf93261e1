"""The OpenAPI document, generated from the route table and the pydantic models of the shapes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from tasky import __version__
from tasky.api import schemas
from tasky.http.doc import Doc
from tasky.workers.registry import WorkerRegistry


def _ref(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in schema.pop("$defs", {}).items():
        components[name] = sub
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def build_openapi(
    routes: Sequence[tuple[str, str, Doc]], registry: WorkerRegistry
) -> dict[str, Any]:
    components: dict[str, Any] = {}
    error_ref = _ref(schemas.ErrorBody, components)
    validation_ref = _ref(schemas.ValidationErrorBody, components)
    config_refs = []
    for worker in registry:
        name = f"Config_{worker.name}"
        schema = worker.Config.model_json_schema(ref_template="#/components/schemas/{model}")
        for sub_name, sub in schema.pop("$defs", {}).items():
            components[sub_name] = sub
        components[name] = schema
        config_refs.append({"$ref": f"#/components/schemas/{name}"})
    paths: dict[str, Any] = {}
    for method, path, doc in routes:
        op: dict[str, Any] = {"summary": doc.summary, "tags": list(doc.tags), "responses": {}}
        params = [
            {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
            for p in _path_params(path)
        ]
        params += [
            {"name": n, "in": "query", "required": False, "schema": {"type": t}, "description": d}
            for n, t, d in doc.query
        ]
        if doc.idempotent:
            params.append(_IDEMPOTENCY_HEADER)
        if params:
            op["parameters"] = params
        if doc.body == "config":
            op["requestBody"] = {
                "required": False,
                "description": "The worker's config (see GET /workers/{name}/info).",
                "content": {"application/json": {"schema": {"oneOf": config_refs}}},
            }
        elif doc.body == "configs":
            op["requestBody"] = {
                "required": True,
                "description": "The worker's configs, one per task (see GET /workers/{name}/info).",
                "content": {
                    "application/json": {
                        "schema": {"type": "array", "items": {"oneOf": config_refs}}
                    }
                },
            }
        elif isinstance(doc.body, type):
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": _ref(doc.body, components)}},
            }
        if doc.ok is not None:
            ok_schema = _ref(doc.ok, components)
            if doc.ok_list:
                ok_schema = {"type": "array", "items": ok_schema}
            op["responses"][str(doc.ok_code)] = {
                "description": "OK",
                "content": {"application/json": {"schema": ok_schema}},
            }
            if doc.idempotent:
                op["responses"]["200"] = {
                    "description": "A retry: the Idempotency-Key was seen with this same request; "
                    "the id is the one the first request created",
                    "content": {"application/json": {"schema": ok_schema}},
                }
        if doc.stream is not None:
            media, text = doc.stream
            op["responses"][str(doc.ok_code)] = {
                "description": text,
                "content": {media: {"schema": {"type": "string"}}},
            }
        invalid_ref = validation_ref if doc.invalid is None else _ref(doc.invalid, components)
        for code in doc.errors:
            ref = invalid_ref if code == 422 else error_ref
            op["responses"][str(code)] = {
                "description": _ERROR_TEXT.get(code, "Error"),
                "content": {"application/json": {"schema": ref}},
            }
        paths.setdefault(path, {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Tasky",
            "version": __version__,
            "description": "Run tasks on your servers. Paths also answer with a trailing slash "
            "and with /task/ in place of /tasks/.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _path_params(path: str) -> list[str]:
    return [part[1:-1].split(":")[0] for part in path.split("/") if part.startswith("{")]


_IDEMPOTENCY_HEADER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"},
    "description": "Makes a retry safe: the same key with the same request within the server's "
    "--idempotency-window (default 24 h) answers 200 with the first request's id and creates "
    "nothing; with a different request, 422. Keys are per token. 1-255 printable ASCII "
    "characters (400 otherwise).",
}

_ERROR_TEXT = {
    400: "Malformed request (bad JSON or query parameter)",
    401: "Missing or wrong token",
    404: "No such worker or task",
    409: "Not allowed in the task's current status, or not supported by the worker",
    413: "Body too large (a batch: too many configs or too many bytes)",
    422: "Invalid config, with the field errors (or an Idempotency-Key reused for another request)",
    429: "Too many: the worker's queue is full, this caller's event streams or request rate are "
    "at their limit (see the Retry-After header)",
    503: "The server is shutting down and takes no new work, or serves its most event streams "
    "already (see the Retry-After header)",
}
