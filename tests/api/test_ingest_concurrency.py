"""Races and outages: many posts at once, replays racing, S3 or the database failing midway."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select

import api.events
from api.db import get_engine
from api.evidence_store import StoreUnavailable
from api.main import create_app
from api.models import Order, OrderState, utcnow
from tests.api.factories import (audit_count, auth, counts, event_json, jpeg, make_key, nothing_stored, order_row,
                                 post, set_order, stored_objects)
from tests.support.servers import wait_until_answers


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_concurrent_events_for_one_issue_make_one_order(client, backend, monkeypatch):
    """20 edge posts at once about the same stall, each its own event_id and request (the
    sync route runs in a thread pool, each request on its own database connection): one
    order, every event and its evidence kept."""
    events = [event_json(bbox=(100 + i % 5, 100, 200 + i % 5, 200)) for i in range(20)]
    # Hold every request after its upload until all 20 are there, so they reach the dedup
    # decision together instead of one after another (without the lock this makes several orders).
    barrier, real_put = threading.Barrier(20, timeout=30), api.events._put_objects

    def put_then_wait(*args):
        keys = real_put(*args)
        barrier.wait()
        return keys

    monkeypatch.setattr(api.events, "_put_objects", put_then_wait)
    frame = jpeg()
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda ev: post(client, ev, frame=frame), events))
    assert [a.status_code for a in answers] == [201] * 20, [a.text for a in answers if a.status_code != 201]
    results = [a.json() for a in answers]
    assert len({r["order_id"] for r in results}) == 1
    assert sum(r["new_order"] for r in results) == 1
    assert counts(backend) == {"camera": 1, "order": 1, "event": 20, "evidence": 20}
    with Session(get_engine(backend.database_url)) as s:
        assert s.exec(select(Order)).one().event_count == 20
    assert len(stored_objects(backend)) == 20


def test_first_events_of_a_new_camera_racing(client, backend):
    """Different issue types take different locks, yet both insert the new camera."""
    events = [event_json(issue_type=t, camera="cam-new") for t in ("clutter", "flooding", "street_vending") * 3]
    with ThreadPoolExecutor(max_workers=9) as pool:
        answers = list(pool.map(lambda ev: post(client, ev), events))
    assert [a.status_code for a in answers] == [201] * 9, [a.text for a in answers]
    assert counts(backend)["camera"] == 1 and counts(backend)["order"] == 3


def test_concurrent_replays_of_one_event_store_it_once(client, backend):
    ev = event_json()
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: post(client, ev, annotated=jpeg()), range(8)))
    assert sorted(a.status_code for a in answers) == [200] * 7 + [201]
    assert len({a.json()["order_id"] for a in answers}) == 1
    assert counts(backend) == {"camera": 1, "order": 1, "event": 1, "evidence": 2}
    assert len(stored_objects(backend)) == 2  # the losers' objects were removed again


def test_replay_runs_into_the_unique_event_id_and_undoes_everything(client, backend):
    """There is no replay check up front: a replay goes through dedup and the writes, the
    unique event_id refuses its INSERT, and all of it is undone. Here the first order was
    closed since, so the replay's dedup opens a recurrence (with its dispatch and audit
    rows) before the refusal: none of that may remain, nor the replay's objects."""
    ev = event_json()
    first = post(client, ev).json()
    set_order(backend, first["order_id"], state=OrderState.closed, closed_at=utcnow())
    before = {**counts(backend), "audit": audit_count(backend)}
    resp = post(client, ev)
    assert resp.status_code == 200 and resp.json() == {**first, "replay": True}
    assert {**counts(backend), "audit": audit_count(backend)} == before
    assert order_row(backend, first["order_id"]).event_count == 1
    assert len(stored_objects(backend)) == 1


def test_s3_down_answers_503_and_stores_nothing(backend):
    down = backend.model_copy(update={"s3_endpoint": f"127.0.0.1:{_unused_port()}", "s3_access_key": "a",
                                      "s3_secret_key": "b"})
    with TestClient(create_app(down), headers=auth(make_key(down, 'admin'))) as c:
        resp = post(c, event_json(), annotated=jpeg())
        assert resp.status_code == 503 and "retry" in resp.json()["detail"] and resp.headers["Retry-After"]
        health = c.get("/healthz")
        assert health.status_code == 503 and health.json()["evidence_store"].startswith("error")
        # where the store lives is for the log: these answers reach callers without a key
        assert down.s3_endpoint not in resp.text and down.s3_endpoint not in health.text
    assert counts(backend) == {"camera": 0, "order": 0, "event": 0, "evidence": 0}


def test_database_failure_after_upload_removes_the_objects(client, backend, monkeypatch):
    def broken(*args, **kwargs):
        raise OperationalError("INSERT", {}, Exception("server closed the connection unexpectedly"))

    monkeypatch.setattr(api.events, "_upsert_camera", broken)
    resp = post(client, event_json(), annotated=jpeg(), crop=jpeg())
    assert resp.status_code == 503 and "database unavailable" in resp.json()["detail"]
    assert nothing_stored(backend)
    monkeypatch.undo()
    assert post(client, event_json()).status_code == 201  # and the next one goes through


def test_s3_failing_midway_leaves_no_objects(client, backend, monkeypatch, caplog):
    store = client.app.state.store
    real_put, puts = store.put, []

    def put_then_fail(key, data, content_type, sha256=None):
        if puts:
            raise StoreUnavailable("disk full")
        puts.append(key)
        real_put(key, data, content_type, sha256)

    monkeypatch.setattr(store, "put", put_then_fail)
    resp = post(client, event_json(), annotated=jpeg())
    assert resp.status_code == 503 and "retry" in resp.text
    assert "disk full" in caplog.text and "disk full" not in resp.text  # the reason is for the log
    assert puts and nothing_stored(backend)


def _env(settings) -> dict[str, str]:
    env = {**os.environ, "STREETWATCH_DATABASE_URL": settings.database_url, "STREETWATCH_SWEEP_INTERVAL_SECONDS": "0",
           "STREETWATCH_EVIDENCE_DIR": str(settings.evidence_dir), "STREETWATCH_SECRET_KEY": settings.secret_key or ""}
    if settings.s3_endpoint:
        env.update(STREETWATCH_S3_ENDPOINT=settings.s3_endpoint, STREETWATCH_S3_ACCESS_KEY=settings.s3_access_key,
                   STREETWATCH_S3_SECRET_KEY=settings.s3_secret_key, STREETWATCH_S3_BUCKET=settings.s3_bucket)
    return env


def test_fifty_posts_from_five_edge_boxes_to_two_api_processes_make_one_order(backend, tmp_path):
    """The real deployment shape: `streetwatch api serve --workers 2` (two processes, so no
    process-local lock can help) and five cameras a few metres apart that all see one flood,
    each posting ten events at once."""
    key = make_key(backend, "edge")
    port = _unused_port()
    server = subprocess.Popen([sys.executable, "-m", "streetwatch_cli", "api", "serve", "--port", str(port),
                               "--workers", "2", "--no-access-log"], env=_env(backend), cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_answers(f"{base}/healthz", server)
        events = []
        for i in range(50):
            ev = event_json(issue_type="flooding", bbox=(10 * (i % 5), 50, 10 * (i % 5) + 150, 200))
            ev["camera"] = {"name": f"box-{i % 5}", "lat": 31.2304 + (i % 5) * 2e-5, "lon": 121.4737}
            events.append(ev)
        frame, gate = jpeg(), threading.Barrier(50, timeout=60)

        def send(ev):
            with httpx.Client(base_url=base, timeout=60, headers=auth(key)) as http:
                gate.wait()  # all fifty leave together
                return http.post("/api/v1/events", data={"event": json.dumps(ev)},
                                 files={"frame": ("f.jpg", frame, "image/jpeg")})

        with ThreadPoolExecutor(max_workers=50) as pool:
            answers = list(pool.map(send, events))
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(20)
    assert [a.status_code for a in answers] == [201] * 50, [a.text for a in answers if a.status_code != 201]
    assert len({a.json()["order_id"] for a in answers}) == 1
    assert sum(a.json()["new_order"] for a in answers) == 1
    assert counts(backend) == {"camera": 5, "order": 1, "event": 50, "evidence": 50}
    with Session(get_engine(backend.database_url)) as s:
        assert s.exec(select(Order)).one().event_count == 50


def _at_once(n: int, call) -> dict[int, int]:
    """`n` requests released together; their status codes, counted."""
    barrier, statuses = threading.Barrier(n, timeout=30), []

    def one(i: int) -> None:
        barrier.wait()
        statuses.append(call(i).status_code)

    with ThreadPoolExecutor(n) as pool:
        list(pool.map(one, range(n)))
    return {code: statuses.count(code) for code in sorted(set(statuses))}


def test_admin_and_comment_writes_at_once_are_all_served(client, backend):
    """Writes that read first (a comment, a worker's duty, placing a camera, a grid) from
    several reviewers at once: SQLite answered "database is locked" to whichever read before
    another committed, PostgreSQL a 500 to the loser of a create. Now each is served, or for
    one grid created twice, one 201 and clear 409s."""
    order_id = post(client, event_json()).json()["order_id"]
    worker = client.post("/api/v1/workers", json={"name": "w"}).json()["id"]
    assert _at_once(10, lambda i: client.post(f"/api/v1/orders/{order_id}/comments", json={"text": f"c{i}"})) == {201: 10}
    assert len(client.get(f"/api/v1/orders/{order_id}").json()["comments"]) == 10
    assert _at_once(10, lambda i: client.patch(f"/api/v1/workers/{worker}", json={"on_duty": i % 2 == 0})) == {200: 10}
    assert _at_once(8, lambda i: client.put("/api/v1/cameras/new-cam", json={"lat": 31.0, "lon": 121.0 + i / 1000})) \
        == {200: 8}
    assert _at_once(8, lambda i: client.post("/api/v1/grids", json={"id": "g-new"})) == {201: 1, 409: 7}
    assert [g["id"] for g in client.get("/api/v1/grids").json()] == ["g-new"]
