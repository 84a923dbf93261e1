"""Routes of the web page: the page, its static files, its metadata, and / -> the page.

The page is plain HTML, CSS and JavaScript modules shipped inside the package. It talks to the
public API only; what it must know about the server (the state machine's allowed actions, whether
chains exist) comes from ``meta.json`` so the page cannot drift from the Python code.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from tasky import __version__
from tasky.http.page_headers import security_headers, with_headers
from tasky.http.responses import JSONResponse
from tasky.states import ACTION_SOURCES, CHAIN_ACTION_SOURCES, FINISHED, Status

STATIC = Path(__file__).parent / "static"
# The statuses each chain action starts from, as tasky.chains.runner checks them; the page only
# enables buttons with it, and the server still answers 409 to anything else.
PAGE_PATH = "/tasky/ui"

# No inline script or style anywhere: task output is untrusted, so even an HTML injection that
# slipped through could neither run script nor load anything from elsewhere.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = security_headers(CSP)


def routes() -> list[BaseRoute]:
    page = (STATIC / "index.html").read_bytes()

    async def index(request: Request) -> Response:
        return Response(page, media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)

    async def to_page(request: Request) -> Response:
        return RedirectResponse(PAGE_PATH, status_code=307)

    async def meta(request: Request) -> JSONResponse:
        chains = any(
            getattr(r, "path", "").startswith("/tasky/v1/chains") for r in request.app.routes
        )
        return JSONResponse(
            {
                "Version": __version__,
                "Statuses": [s.value for s in Status],
                "Finished": sorted(s.value for s in FINISHED),
                "ActionSources": {
                    a: sorted(s.value for s in src) for a, src in ACTION_SOURCES.items()
                },
                "Chains": chains,
                "ChainActionSources": {
                    a: sorted(s.value for s in src) for a, src in CHAIN_ACTION_SOURCES.items()
                },
            },
            headers={"Cache-Control": "no-cache"},
        )

    return [
        Route("/", to_page, methods=["GET"]),
        Route(PAGE_PATH, index, methods=["GET"]),
        Route(PAGE_PATH + "/meta.json", meta, methods=["GET"]),
        Mount(
            PAGE_PATH + "/static", app=with_headers(StaticFiles(directory=STATIC), SECURITY_HEADERS)
        ),
    ]
