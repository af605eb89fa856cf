"""/docs (Swagger UI) and /redoc served from installed files, with the review page's headers.

FastAPI's own pages load their scripts from a CDN, without integrity checks and without a
Content-Security-Policy or framing protection, on the page where people paste their keys. Here
the scripts come from the `fastapi-offline` package (it ships Swagger UI's and ReDoc's
bundles; only its files are used) and Swagger UI is started by a file of ours, so the policy
allows scripts from this origin only. Both tools set inline styles (ReDoc's styled-components,
Swagger UI's React) and ReDoc runs a worker from a blob: those two are allowed, nothing else.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import Scope

from api.routes.web import PAGE_HEADERS

INIT_DIR = Path(__file__).resolve().parent.parent / "web" / "docs"

DOCS_HEADERS = {
    **PAGE_HEADERS,
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                               "script-src 'self'; worker-src 'self' blob:; connect-src 'self'; font-src 'self' data:; "
                               "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
}

SWAGGER_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} - Swagger UI</title>
<link rel="stylesheet" href="docs-assets/vendor/swagger-ui.css">
<link rel="icon" href="docs-assets/vendor/favicon.png"></head>
<body><div id="swagger-ui"></div>
<script src="docs-assets/vendor/swagger-ui-bundle.js"></script>
<script src="docs-assets/init/swagger-init.js"></script>
</body></html>
"""

REDOC_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} - ReDoc</title>
<link rel="icon" href="docs-assets/vendor/favicon.png"></head>
<body><redoc spec-url="openapi.json"></redoc>
<script src="docs-assets/vendor/redoc.standalone.js"></script>
</body></html>
"""


def vendor_dir() -> Path:
    import fastapi_offline

    return Path(fastapi_offline.__file__).resolve().parent / "static"


class DocsFiles(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(DOCS_HEADERS)
        return response


def install(app: FastAPI) -> None:
    """Serve the two pages on an app made with docs_url=None and redoc_url=None."""
    router = APIRouter(include_in_schema=False)
    title = app.title.replace("<", "&lt;")

    @router.get("/docs")
    def swagger() -> HTMLResponse:
        return HTMLResponse(SWAGGER_PAGE.format(title=title), headers=DOCS_HEADERS)

    @router.get("/redoc")
    def redoc() -> HTMLResponse:
        return HTMLResponse(REDOC_PAGE.format(title=title), headers=DOCS_HEADERS)

    app.include_router(router)
    app.mount("/docs-assets/vendor", DocsFiles(directory=vendor_dir()), name="docs-vendor")
    app.mount("/docs-assets/init", DocsFiles(directory=INIT_DIR), name="docs-init")
