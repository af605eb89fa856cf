"""Database pressure answers 503 with Retry-After, never 500 (issue 19, item 4): a burst of 200
requests on SQLite gave `QueuePool limit ... reached` 500s after ~30 s, because writers waiting
for SQLite's one write lock each held a pooled connection."""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Iterator

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlmodel import Session

from api import db
from api.db import begin_write, get_engine, upgrade_database
from api.main import create_app
from tests.api.conftest import sqlite_settings
from tests.api.factories import auth, event_json, jpeg, make_key


def test_a_pool_timeout_is_503_with_retry_after(tmp_path, monkeypatch):
    monkeypatch.setattr(db, "SQLITE_POOL", {"pool_size": 1, "max_overflow": 0})
    monkeypatch.setattr(db, "POOL_TIMEOUT_S", 0.2)
    settings = sqlite_settings(tmp_path)
    upgrade_database(settings.database_url)
    key = make_key(settings, "admin")
    with TestClient(create_app(settings), headers=auth(key)) as client:
        assert client.get("/api/v1/orders").status_code == 200
        with get_engine(settings.database_url).connect():  # the pool's only connection, taken
            resp = client.get("/api/v1/orders")
    assert resp.status_code == 503 and resp.headers["Retry-After"], resp.text
    assert "retry" in resp.json()["detail"]


def test_sqlite_writers_wait_for_the_lock_without_holding_connections(sqlite_backend):
    engine = get_engine(sqlite_backend.database_url)
    with engine.connect():  # as the API does at startup: the file is in WAL mode from then on
        pass
    other_process = sqlite3.connect(engine.url.database, isolation_level=None)
    other_process.execute("BEGIN IMMEDIATE")  # another API process is writing
    done: list[str] = []

    def writer() -> None:
        with Session(engine) as session:
            begin_write(session)
            session.commit()
            done.append("ok")

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    # One writer waits on SQLite with a connection; the other three wait for it without one.
    assert engine.pool.checkedout() == 1 and not done
    other_process.execute("COMMIT")
    for t in threads:
        t.join(10)
    assert done == ["ok"] * 4 and engine.pool.checkedout() == 0
    with Session(engine) as session:  # and the slot is free again after a rollback too
        begin_write(session)
        session.rollback()
        begin_write(session)
        session.close()
    assert engine.pool.checkedout() == 0


@contextmanager
def serving(app) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(20)


def test_a_burst_of_200_mixed_requests_on_sqlite_answers_no_500(sqlite_backend):
    settings = sqlite_backend.model_copy(update={"report_rate_per_minute": 1000.0})
    edge, admin = make_key(settings, "edge"), make_key(settings, "admin")
    frame = jpeg()
    app = create_app(settings)
    with serving(app) as base, httpx.Client(base_url=base, timeout=120) as seed:
        order_id = seed.post("/api/v1/events", headers=auth(edge), data={"event": json.dumps(event_json())},
                             files={"frame": ("f.jpg", frame, "image/jpeg")}).json()["order_id"]

        def one(i: int) -> int:
            kind = i % 8
            with httpx.Client(base_url=base, timeout=120) as c:
                if kind in (0, 1):  # valid events, each its own camera (a new order each)
                    ev = event_json(camera=f"cam-{100 + i}")
                    return c.post("/api/v1/events", headers=auth(edge), data={"event": json.dumps(ev)},
                                  files={"frame": ("f.jpg", frame, "image/jpeg")}).status_code
                if kind == 2:  # invalid events
                    return c.post("/api/v1/events", headers=auth(edge), data={"event": "{}"},
                                  files={"frame": ("f.jpg", frame, "image/jpeg")}).status_code
                if kind == 3:
                    return c.post("/api/v1/reports", data={"issue_type": "clutter", "lat": 31.2, "lon": 121.4 + i / 1e3},
                                  files={"photo": ("p.jpg", frame, "image/jpeg")}).status_code
                if kind == 4:
                    return c.get("/api/v1/orders", headers=auth(admin)).status_code
                if kind == 5:
                    return c.get("/open311/v2/requests.json").status_code
                if kind == 6:
                    return c.post(f"/api/v1/orders/{order_id}/comments", headers=auth(admin),
                                  json={"text": f"comment {i}"}).status_code
                return c.get(f"/api/v1/orders/{order_id}", headers=auth(admin)).status_code

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=200) as pool:
            codes = Counter(pool.map(one, range(200)))
        took = time.monotonic() - started
    assert not [c for c in codes if c >= 500 and c != 503], codes
    # Under this load nothing should even need the 503: it is there for worse.
    assert codes[503] == 0 and codes[201] >= 25 * 3 and codes[422] == 25, (codes, took)
