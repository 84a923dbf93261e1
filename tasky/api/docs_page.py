"""``GET /tasky/v1/docs``: the interactive API docs, Swagger UI 5 from files this server holds.

The OpenAPI document is 3.1, which Swagger UI reads from version 5 on. Its files come from the
``flask-swagger-ui`` package, which ships the upstream ``swagger-ui-dist`` build and follows its
releases; only the files are used (the package's Flask blueprint is never imported), so nothing
loads from a CDN and the page works on a machine without internet access.
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from tasky.http.page_headers import security_headers, with_headers
from tasky.http.query import only_documented

DOCS_PATH = "/tasky/v1/docs"
ASSETS_PATH = DOCS_PATH + "/static"
OPENAPI_PATH = "/tasky/v1/openapi.json"
ASSETS_PACKAGE = "flask_swagger_ui"

PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tasky API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" type="image/png" href="{ASSETS_PATH}/favicon-32x32.png">
<link rel="stylesheet" href="{ASSETS_PATH}/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="{ASSETS_PATH}/swagger-ui-bundle.js"></script>
<script src="{ASSETS_PATH}/init.js"></script>
</body></html>
"""

# In a file of its own, not inline: the CSP allows scripts from this server only. No validator
# badge: it would load an image from validator.swagger.io (and the CSP refuses it).
INIT_SCRIPT = (
    f'window.ui = SwaggerUIBundle({{url: "{OPENAPI_PATH}", dom_id: "#swagger-ui", '
    "deepLinking: true, validatorUrl: null});\n"
)

# Swagger UI's own scripts only, from this server; it sets inline styles (style-src), shows
# data: images and calls only this API (connect-src).
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self' data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
HEADERS = security_headers(CSP)


def assets_dir() -> Path:
    """Where the installed Swagger UI files are (found without importing the package)."""
    spec = find_spec(ASSETS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the {ASSETS_PACKAGE} package (Swagger UI's files) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "dist"


def swagger_ui_version() -> str:
    """The Swagger UI release the files are from (its dist/VERSION, e.g. ``v5.34.0``)."""
    return (assets_dir() / "VERSION").read_text(encoding="utf-8").strip()


async def docs(request: Request) -> HTMLResponse:
    return HTMLResponse(PAGE, headers=HEADERS)


async def init_script(request: Request) -> Response:
    return PlainTextResponse(INIT_SCRIPT, media_type="application/javascript", headers=HEADERS)


def routes() -> list[BaseRoute]:
    return [
        Route(DOCS_PATH, only_documented(docs, ()), methods=["GET"]),
        Route(ASSETS_PATH + "/init.js", only_documented(init_script, ()), methods=["GET"]),
        Mount(ASSETS_PATH, app=with_headers(StaticFiles(directory=assets_dir()), HEADERS)),
    ]
