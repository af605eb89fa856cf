"""The review web page: static HTML/CSS/JS served at /review/ (nothing from a CDN), which calls
the JSON API with the reviewer's key. `/` sends browsers there."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent.parent / "web" / "static"

router = APIRouter(include_in_schema=False)


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/review/", status_code=307)


def install(app: FastAPI) -> None:
    """Add the page to the app: the redirect and the static files."""
    app.include_router(router)
    app.mount("/review", StaticFiles(directory=STATIC_DIR, html=True), name="review")
