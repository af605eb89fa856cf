"""A cap on request bodies, checked while they stream in.

Starlette spools every multipart upload to disk before the route sees it, so without this
a runaway client could fill the disk long before the per-part limit is checked. Bodies
that carry no image (JSON, form-urlencoded) are read whole into memory by the parsers:
they get their own, JSON-sized cap.
"""

from __future__ import annotations

import re

from starlette.exceptions import HTTPException

from api.nul_guard import is_json
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, max_text_bytes: int | None = None,
                 overrides: list[tuple[str, re.Pattern[str], int]] | None = None):
        self.app = app
        self.max_bytes = max_bytes
        self.max_text_bytes = max_text_bytes if max_text_bytes is not None else max_bytes
        # (method, path pattern, cap): a route taking large raw bodies, e.g. a model's files
        # (admin only; the route reads its body only after the role check).
        self.overrides = overrides or []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        limit = self.max_text_bytes if _is_text_body(headers.get(b"content-type", b"")) else self.max_bytes
        for method, pattern, cap in self.overrides:
            if scope["method"] == method and pattern.fullmatch(scope["path"]):
                limit = cap
        too_large = f"request body larger than {limit} bytes"
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await JSONResponse({"detail": too_large}, status_code=413)(scope, receive, send)
            return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # Raised inside the route's body parsing, so FastAPI answers it as usual.
                    raise HTTPException(413, too_large)
            return message

        await self.app(scope, counting_receive, send)


def _is_text_body(content_type: bytes) -> bool:
    # What FastAPI parses as JSON (api/nul_guard.py), and urlencoded forms: no files in either.
    mime = content_type.split(b";")[0].strip().lower()
    return is_json(content_type) or mime == b"application/x-www-form-urlencoded"
