"""Refuse NUL (U+0000) in a request's path, query and JSON body with 422 naming where it is.

PostgreSQL text cannot hold NUL (SQLite quietly can), so a NUL anywhere a string is stored or
compared would otherwise fail inside the database as a 500, and on one backend only. Every
route takes its strings from these three places, so one check here covers routes to come
too; multipart fields are checked where they are parsed (api/schemas.py: Text).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.schemas import NUL_REFUSED

def _nul_in_json(value: Any, loc: tuple) -> tuple | None:
    """Where the first NUL in a parsed JSON value is, as a `loc`; None if there is none."""
    if isinstance(value, str):
        return loc if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            found = (*loc, key) if "\x00" in key else _nul_in_json(item, (*loc, key))
            if found:
                return found
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = _nul_in_json(item, (*loc, i))
            if found:
                return found
    return None


def _nul_in_url(scope: Scope) -> tuple | None:
    if "\x00" in scope["path"]:
        return ("path",)
    query: bytes = scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if "\x00" in name or "\x00" in value:
                return ("query", name.replace("\x00", ""))
    return None


def is_json(content_type: bytes) -> bool:
    # What FastAPI may parse as JSON: application/json, application/*+json (merge-patch+json,
    # ...), and a body sent with no content type at all.
    mime = content_type.split(b";")[0].strip().lower()
    return mime in (b"", b"application/json") or (mime.startswith(b"application/") and mime.endswith(b"+json"))


class RefuseNul:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loc = _nul_in_url(scope)
        if loc is None and is_json(dict(scope["headers"]).get(b"content-type", b"")):
            try:
                body = await _read_body(receive)
            except HTTPException as exc:  # the body cap (api/body_limit.py) ran out while we read
                await JSONResponse({"detail": exc.detail}, status_code=exc.status_code)(scope, receive, send)
                return
            # A NUL can only be in a JSON string as the escape \u0000 (a raw one is not JSON).
            if b"\\u0000" in body:
                try:
                    loc = _nul_in_json(json.loads(body), ("body",))
                except (ValueError, RecursionError):
                    pass  # not JSON (or nested past any real body): the route says so
            receive = _replay(body, receive)
        if loc is not None:
            detail = [{"type": "value_error", "loc": list(loc), "msg": NUL_REFUSED}]
            await JSONResponse({"detail": detail}, status_code=422)(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break  # the client went away; the route will hear the same
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: the disconnect, when it comes

    return replay
