"""Open311 answers in the format the client asked for (the path's `.json` or `.xml`), errors
included: a 311 client reading XML cannot parse FastAPI's JSON `detail`, so every refusal on
an Open311 route (validation, keys, rate limit, image checks) becomes GeoReport's
`[{code, description}]` / `<errors><error>` in the requested format."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.images import BadImage, TooLarge
from api.open311_xml import to_xml

XML_TYPE = "text/xml; charset=utf-8"
FORMATS = ("json", "xml")


class Open311Error(Exception):
    """A refusal with GeoReport's code (the HTTP status) and a description naming the field."""

    def __init__(self, status: int, description: str, headers: dict[str, str] | None = None):
        super().__init__(description)
        self.status = status
        self.description = description
        self.headers = headers


def format_of(request: Request) -> str:
    return "xml" if request.url.path.endswith(".xml") else "json"


def render(fmt: str, root: str, content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """`content` (models or plain data) as JSON, or as XML under `root`."""
    plain = jsonable_encoder(content)
    if fmt == "xml":
        return Response(to_xml(root, plain), status_code=status, media_type=XML_TYPE, headers=headers)
    return JSONResponse(plain, status_code=status, headers=headers)


def error(fmt: str, status: int, description: str, headers: dict[str, str] | None = None) -> Response:
    return render(fmt, "errors", [{"code": status, "description": description}], status, headers)


def _validation_description(exc: RequestValidationError) -> str:
    # "start_date: Input should be a valid datetime", naming each field as the client sent it.
    parts = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("query", "path", "body", "header")]
        parts.append(f"{'.'.join(loc) or 'request'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


def as_open311_error(exc: Exception) -> Open311Error | None:
    """The GeoReport error for a refusal raised anywhere below an Open311 route; None for a
    fault that is not the client's (left to the app's own handlers)."""
    if isinstance(exc, Open311Error):
        return exc
    if isinstance(exc, RequestValidationError):
        return Open311Error(400, _validation_description(exc))
    if isinstance(exc, (HTTPException, StarletteHTTPException)):
        return Open311Error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))
    if isinstance(exc, BadImage):
        return Open311Error(400, f"{exc.part}: {exc.reason}")
    if isinstance(exc, TooLarge):
        return Open311Error(413, str(exc))
    return None


async def _from_app_handler(request: Request, exc: Exception) -> Open311Error | None:
    """What the app's own handler answers (a busy database, a store or redaction that is down:
    503 with Retry-After), as a GeoReport error, so this module need not know every such fault."""
    handlers = request.app.exception_handlers
    handler = next((handlers[cls] for cls in type(exc).__mro__ if cls in handlers), None)
    if handler is None:
        return None
    answer = await handler(request, exc)
    if not isinstance(answer, JSONResponse) or answer.status_code < 400:
        return None
    detail = json.loads(bytes(answer.body)).get("detail") if answer.body else None
    retry = answer.headers.get("retry-after")
    return Open311Error(answer.status_code, detail if isinstance(detail, str) else "the request was refused",
                        {"Retry-After": retry} if retry else None)


class Open311Route(APIRoute):
    """A route whose refusals come back as GeoReport errors in the path's format."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                refusal = as_open311_error(exc) or await _from_app_handler(request, exc)
                if refusal is None:
                    raise
                return error(format_of(request), refusal.status, refusal.description, refusal.headers)

        return handle
