"""The review web page: static HTML/CSS/JS served at /review/ (nothing from a CDN), which calls
the JSON API with the reviewer's key. `/` sends browsers there."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent.parent / "web" / "static"

# index.html carries the same policy as a meta tag (for a copy opened from disk); only a
# header can forbid framing, which would let another site overlay the page's buttons.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: http: https:; style-src 'self'; "
                               "script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class PageFiles(StaticFiles):
    """The page's files, with the headers above on every answer."""

    async def get_response(self, path: str, scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(PAGE_HEADERS)
        return response

router = APIRouter(include_in_schema=False)


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/review/", status_code=307)


def install(app: FastAPI) -> None:
    """Add the page to the app: the redirect and the static files."""
    app.include_router(router)
    app.mount("/review", PageFiles(directory=STATIC_DIR, html=True), name="review")
