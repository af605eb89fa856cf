"""Keep-alive connections that do not stay on one worker process for ever.

Edge boxes keep one HTTP connection open and post every event on it. With several API worker
processes sharing a socket, whichever worker accepts a connection serves it until it closes,
and the kernel gives no guarantee that the connections spread evenly: in the event benchmark
(16 clients, 2 workers) all 16 sometimes landed on one worker, which then carried the whole
load on one core (79 against 95-109 events/s). Like nginx's `keepalive_requests`, a
connection is asked to close after a while (`Connection: close` on a response); the client
reconnects, and the worker with the idle event loop is the one likely to accept it.

No per-connection state: each response closes its connection with probability 1/N, so a
connection serves N requests on average. Answers carry their full body before the close, so
no request is lost; HTTP clients (httpx, the edge's uplink) reconnect by themselves.
"""

from __future__ import annotations

import random

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# How long `streetwatch api serve` keeps an idle connection (uvicorn's own default is 5 s).
# Longer than a box's heartbeat interval (30 s), so a box keeps its connection from one
# heartbeat to the next: at 5 s every heartbeat paid a new connection (accept, uvicorn's
# protocol and its timers), and a bare GET /healthz on a fresh connection cost the server
# 2.1 ms of CPU. 75 s as nginx's keepalive_timeout; an idle connection costs ~10 KB.
SERVER_KEEP_ALIVE_S = 75
# The edge's side closes its idle connection before the server would, so it never sends on
# a connection the server is closing at that moment.
CLIENT_KEEP_ALIVE_S = SERVER_KEEP_ALIVE_S - 15


class RotateKeepAlive:
    def __init__(self, app: ASGIApp, mean_requests: int, rng: random.Random | None = None):
        if mean_requests < 1:
            raise ValueError("mean_requests must be at least 1")
        self.app = app
        self.p = 1.0 / mean_requests
        self.rng = rng or random.Random()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.rng.random() >= self.p:
            await self.app(scope, receive, send)
            return

        async def closing_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, closing_send)
