"""What the layers that answer a plain request ahead of the middleware stack share
(api/heartbeat_route.py, api/event_route.py): reading headers from the ASGI scope, and running
the route's own service call in one thread hand-off with the app's exception handlers behind it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from starlette._utils import is_async_callable
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from api.nul_guard import _replay

JSON_HEADERS = [(b"content-type", b"application/json")]


async def answer_in_thread(api: FastAPI, scope: Scope, receive: Receive, send: Send, body: bytes,
                           work: Callable[..., tuple[bytes, int]], *args: Any) -> None:
    """Send `work(*args)`'s JSON answer and status; an exception it raises (having rolled back)
    is answered by the app's exception handlers, as FastAPI would answer it."""
    try:
        answer, status = await run_in_threadpool(work, *args)
    except Exception as exc:
        handler = _handler(api, exc)
        if handler is None:
            raise
        request = Request(scope, _replay(body, receive))
        response = await handler(request, exc) if is_async_callable(handler) \
            else await run_in_threadpool(handler, request, exc)
        await response(scope, receive, send)
        return
    await send_json(send, answer, status)


async def send_json(send: Send, answer: bytes, status: int = 200) -> None:
    """Answer with a JSON body, as the route's JSONResponse would."""
    await send({"type": "http.response.start", "status": status,
                "headers": [*JSON_HEADERS, (b"content-length", str(len(answer)).encode())]})
    await send({"type": "http.response.body", "body": answer})


def _handler(api: FastAPI, exc: Exception) -> Any:
    for cls in type(exc).__mro__:
        if cls is Exception:  # left to the server-error layer, as the stack leaves it
            return None
        if cls in api.exception_handlers:
            return api.exception_handlers[cls]
    return None


def header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes:
    for key, value in headers:
        if key.lower() == name:
            return value
    return b""


def content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    value = header(headers, b"content-length")
    return int(value) if value.isdigit() else None
