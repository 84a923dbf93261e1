"""How a route is documented: one :class:`Doc` per route, read by the OpenAPI document
(:mod:`tasky.api.openapi`) and by the check of query parameters (:mod:`tasky.http.query`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel


@dataclass(frozen=True, slots=True)
class Doc:
    summary: str
    ok: type[BaseModel] | None = None
    ok_list: bool = False
    ok_code: int = 200
    body: type[BaseModel] | str | None = None
    errors: tuple[int, ...] = ()
    query: tuple[tuple[str, str, str], ...] = ()  # (name, type, description)
    tags: tuple[str, ...] = field(default=("tasks",))
    # A streamed answer of another media type (Server-Sent Events), described in words.
    stream: tuple[str, str] | None = None  # (media type, description)
    # Takes an Idempotency-Key header (tasky.idempotency): a retry answers 200, not 201.
    idempotent: bool = False
    # The shape of a 422 answer, when it is not the usual ValidationErrorBody.
    invalid: type[BaseModel] | None = None


# (method, full path, its documentation): what a group of routes adds to the OpenAPI document.
DocEntry = tuple[str, str, Doc]
