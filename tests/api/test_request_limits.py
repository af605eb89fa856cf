"""Requests are refused cheaply and answered briefly (issue 19, items 8, 9, 11): the key is checked
before the body is read, JSON bodies have a JSON-sized cap, refused input is echoed short and
never as an object, and form text that is not UTF-8 is refused instead of stored as garble."""

from __future__ import annotations

import asyncio
import json

from sqlmodel import Session, select

from api.db import get_engine
from api.main import create_app
from api.models import Report
from tests.api.factories import auth, event_json, jpeg, make_key, nothing_stored, post


def _asgi_post(app, path: str, headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> tuple[int, int]:
    """POST a body in chunks straight to the ASGI app; returns (status, chunks the app read)."""
    read = 0
    status = 0

    async def receive():
        nonlocal read
        if read < len(chunks):
            read += 1
            return {"type": "http.request", "body": chunks[read - 1], "more_body": read < len(chunks)}
        return {"type": "http.disconnect"}

    async def send(message):
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"t"), *headers], "client": ("127.0.0.1", 5000), "server": ("t", 80)}
    asyncio.run(app(scope, receive, send))
    return status, read


def test_a_request_without_a_valid_key_is_refused_before_its_body_is_read(sqlite_backend):
    app = create_app(sqlite_backend)
    body = [b'{"id": "g-1", "name": "' + b"x" * 100_000 for _ in range(8)] + [b'"}']
    json_type = [(b"content-type", b"application/json")]
    assert _asgi_post(app, "/api/v1/grids", json_type, body) == (401, 0)
    assert _asgi_post(app, "/api/v1/grids", [*json_type, (b"authorization", b"Bearer sw_not-a-key")], body) == (401, 0)
    # Routes without a key (citizen reports) and with a valid key read on as before.
    admin = make_key(sqlite_backend, "admin").encode()
    status, read = _asgi_post(app, "/api/v1/grids", [*json_type, (b"authorization", b"Bearer " + admin)], body)
    assert status == 422 and read == len(body)  # (the name is too long: read, then refused)


def test_json_bodies_have_a_json_sized_limit(client, backend):
    order_id = post(client, event_json()).json()["order_id"]
    big = {"text": "x" * (2 * 1024 * 1024)}
    resp = client.post(f"/api/v1/orders/{order_id}/comments", json=big)
    assert resp.status_code == 413 and len(resp.content) < 200, resp.text[:300]
    small = client.post(f"/api/v1/orders/{order_id}/comments", json={"text": "ok"})
    assert small.status_code == 201
    # An image upload still has its own, larger limit.
    assert post(client, event_json(), frame=jpeg(size=(320, 240))).status_code == 201


def test_refused_input_is_echoed_short_and_never_as_an_object(client, backend):
    order_id = post(client, event_json()).json()["order_id"]
    long_comment = client.post(f"/api/v1/orders/{order_id}/comments", json={"text": "y" * 500_000})
    assert long_comment.status_code == 422 and len(long_comment.content) < 2000, len(long_comment.content)
    (error,) = long_comment.json()["detail"]
    assert error["loc"] == ["body", "text"] and error["input"].startswith("yyy") and "500000 characters" in error["input"]
    # The event part sent as a file: the 422 names the part, not the upload object's insides.
    as_file = client.post("/api/v1/events", files={"event": ("e.json", json.dumps(event_json()), "application/json"),
                                                   "frame": ("f.jpg", jpeg(), "image/jpeg")})
    assert as_file.status_code == 422, as_file.text
    for inside in ("_TemporaryFileArgs", "_max_mem_size", "_rolled", "spool"):
        assert inside not in as_file.text
    assert ["body", "event"] in [e["loc"] for e in as_file.json()["detail"]]


def _report(client, text: bytes | str):
    return client.post("/api/v1/reports", data={"issue_type": "clutter", "lat": "31.2", "lon": "121.4", "text": text},
                       files={"photo": ("p.jpg", jpeg(), "image/jpeg")}, headers={"Authorization": ""})


def test_report_text_that_is_not_utf8_is_refused_naming_the_field(client, backend):
    resp = _report(client, "垃圾".encode("gbk"))
    assert resp.status_code == 422, resp.text
    (error,) = resp.json()["detail"]
    assert error["loc"] == ["body", "text"] and "UTF-8" in error["msg"]
    assert nothing_stored(backend)
    assert _report(client, "垃圾 on the corner").status_code == 201
    with Session(get_engine(backend.database_url)) as s:
        assert s.exec(select(Report.text)).all() == ["垃圾 on the corner"]
