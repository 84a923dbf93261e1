"""``GET /tasky/v1``: where to start. Links to the docs, the OpenAPI document, the web page and
the main collections, so that a first ``curl`` of the API's root says where to go next."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from tasky import __version__
from tasky.api import schemas
from tasky.api.docs_page import DOCS_PATH, OPENAPI_PATH
from tasky.http.doc import Doc
from tasky.http.query import only_documented
from tasky.http.responses import JSONResponse

ROOT = "/tasky/v1"
PAGE_PATH = "/tasky/ui"

INDEX = {
    "Name": "Tasky",
    "Version": __version__,
    "Docs": DOCS_PATH,
    "OpenAPI": OPENAPI_PATH,
    "Page": PAGE_PATH,
    "Workers": ROOT + "/workers",
    "Tasks": ROOT + "/tasks",
    "Chains": ROOT + "/chains",
    "Schedules": ROOT + "/schedules",
    "Events": ROOT + "/events",
    "Metrics": "/metrics",
}


async def index(request: Request) -> JSONResponse:
    return JSONResponse(INDEX)


def routes() -> list[BaseRoute]:
    return [Route(ROOT, only_documented(index, ()), methods=["GET"])]


def docs() -> list[tuple[str, str, Doc]]:
    return [
        (
            "GET",
            ROOT,
            Doc(
                "Where to start: links to the docs, the page and the collections",
                schemas.ApiIndex,
                tags=("meta",),
            ),
        )
    ]
