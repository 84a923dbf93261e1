"""The ceiling: a bare Starlette app with orjson, served by uvicorn exactly as Tasky is.

``python bench/baseline.py PORT``. POST answers ``{"TaskId": <uuid4 hex>}`` after reading the body
(any real handler must); GET answers a small status object. No store, no validation, nothing else.
"""

from __future__ import annotations

import sys
import uuid
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


class ORJSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


async def submit(request: Request) -> ORJSONResponse:
    await request.body()
    return ORJSONResponse({"TaskId": uuid.uuid4().hex}, status_code=201)


async def status(request: Request) -> ORJSONResponse:
    return ORJSONResponse({"TaskId": request.path_params["id"], "Status": "Completed"})


app = Starlette(
    routes=[
        Route("/tasky/v1/workers/{name}", submit, methods=["POST"]),
        Route("/tasky/v1/tasks/{id}/status", status, methods=["GET"]),
        Route("/tasky/v1/workers", lambda request: ORJSONResponse([]), methods=["GET"]),
    ]
)


def main() -> None:
    # The same settings as tasky/server.py, so the only difference is the application.
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
        server_header=False,
    )


if __name__ == "__main__":
    main()
