"""The layers every request meets, in front of FastAPI's own entry rather than inside its stack.

A request to a FastAPI app passes FastAPI's `__call__` (its native OpenTelemetry asks three
global providers whether they are set up: environment lookups and calls into four modules),
Starlette's, and ServerErrorMiddleware before the first layer added with `add_middleware`;
every `await` inside suspends and resumes through each of those frames again. The heartbeat's
and the single event's short ways (api/heartbeat_route.py, api/event_route.py) answer most of
what a fleet sends, so here they, and the layers that must see every request before them (the
client's address, CORS, keep-alive rotation), sit in front of all that. On this VM, where a
worker woken after ~120 ms idle pays for every page it touches again (api/huge_pages.py), this
and FastAPI's telemetry check turned off (`telemetry_config`) took 0.05 ms of server CPU off a
heartbeat: 1.48 → 1.43 ms on average, six pairs of servers run side by side, each pair better.

What falls through goes on into FastAPI unchanged. The one difference from the layers being
inside: an exception raised by a front layer itself reaches uvicorn, which answers the same
plain 500 that ServerErrorMiddleware would and logs it.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send


class FrontedAPI(FastAPI):
    """A FastAPI app whose http and websocket requests go first through `front`, set once the
    app is built; its innermost layer falls through to `behind_front`, FastAPI's own entry."""

    front: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.front is not None and scope["type"] in ("http", "websocket"):
            scope["app"] = self  # as Starlette's entry sets it: a Request made in front has its app
            await self.front(scope, receive, send)
        else:  # lifespan, or a request before the front is set
            await super().__call__(scope, receive, send)

    async def behind_front(self, scope: Scope, receive: Receive, send: Send) -> None:
        """FastAPI's own entry: where the front passes what it does not answer."""
        await super().__call__(scope, receive, send)


def telemetry_config(enabled: bool | None) -> dict[str, Any] | None:
    """FastAPI's native OpenTelemetry settings: None keeps FastAPI's defaults (spans, metrics and
    logs through the global providers, when an SDK has set them up). `enabled` None means: on
    where an OpenTelemetry SDK is installed (`pip install 'fastapi[opentelemetry]'`), since
    without one no provider can ever be set and the per-request check finds nothing."""
    if enabled is None:
        try:
            enabled = importlib.util.find_spec("opentelemetry.sdk") is not None
        except ModuleNotFoundError:  # not even the API package
            enabled = False
    return None if enabled else {"tracing": False, "metrics": False, "logs": False}
