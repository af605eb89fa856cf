"""Keep-alive connections are rotated so that they spread over the API's worker processes."""

from __future__ import annotations

import asyncio
import random
import socket
import threading
import time

import uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from api.keepalive import RotateKeepAlive


def _answer(request):
    return PlainTextResponse("ok", headers={"Connection": "keep-alive"})


def _sent_headers(mean: int, n: int, seed: int = 0) -> list[dict[bytes, bytes]]:
    app = RotateKeepAlive(Starlette(routes=[Route("/", _answer)]), mean_requests=mean, rng=random.Random(seed))
    out: list[dict[bytes, bytes]] = []

    async def one() -> None:
        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message):
            if message["type"] == "http.response.start":
                out.append(dict(message["headers"]))

        scope = {"type": "http", "method": "GET", "path": "/", "raw_path": b"/", "query_string": b"", "headers": [],
                 "http_version": "1.1", "scheme": "http", "server": ("t", 80), "client": ("c", 1), "root_path": ""}
        await app(scope, receive, send)

    async def many() -> None:
        for _ in range(n):
            await one()

    asyncio.run(many())
    return out


def test_about_one_response_in_n_closes_its_connection():
    closes = [h.get(b"connection") for h in _sent_headers(mean=20, n=2000)]
    assert set(closes) == {b"close", b"keep-alive"}  # the route's own header is replaced, never doubled
    assert 60 <= closes.count(b"close") <= 150  # 100 expected
    assert all(h[b"connection"] == b"close" for h in _sent_headers(mean=1, n=20))


def test_uvicorn_closes_the_connection_after_the_rotated_answer():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = RotateKeepAlive(Starlette(routes=[Route("/", _answer)]), mean_requests=3, rng=random.Random(1))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        served_per_connection = []
        for _ in range(8):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
                served = 0
                while served < 50:
                    conn.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
                    answer = b""
                    while not answer.endswith(b"\r\n\r\nok"):
                        chunk = conn.recv(65536)
                        assert chunk, "the server closed the connection before answering"
                        answer += chunk
                    served += 1
                    if b"connection: close" in answer.lower():
                        assert conn.recv(1) == b""  # ...and then it really closes it
                        break
                served_per_connection.append(served)
        # (seeded; at a mean of 3, fifty requests on one connection would be a (2/3)^49 ≈ 2e-9 chance)
        assert max(served_per_connection) < 50 and sum(served_per_connection) >= 8
    finally:
        server.should_exit = True
        thread.join(10)
