"""Heartbeats answered before the middleware stack (api/heartbeat_route.py) and unchanged
ones written with one statement on the event loop's connection (api/heartbeat_loop.py): the
same answers, the same rows, the full path whenever the box's digest or its row says so, and
every request the layer does not take is the route's to answer."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text, update
from sqlmodel import Session
from starlette.types import Receive, Scope, Send

from api.auth import SYSTEM, forget_keys
from api.db import _writer_slot, get_engine
from api.fleet_alerts import sweep_fleet
from api.fleet_models import EdgeBox
from api import heartbeat_route
from api.fleet_schemas import HeartbeatIn
from api.heartbeat_loop import LoopWriter
from api.heartbeat_route import HeartbeatFirst
from api.heartbeats import record_heartbeat, states_digest
from api.main import create_app
from api.settings import Settings
from tests.api.factories import auth, make_key
from tests.api.fleet_helpers import beat, box_key, camera, fleet_rows, heartbeat, notifications


@pytest.fixture(autouse=True)
def _fresh_keys():
    forget_keys()
    yield
    forget_keys()


class Router:
    """Stands for the stack below the layer: answers 299 and counts what reached it."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.paths.append(scope["path"])
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def test_a_plain_heartbeat_never_reaches_the_router_and_is_stored(backend: Settings) -> None:
    app, router = create_app(backend), Router()
    key = box_key(backend, "box-1")
    with TestClient(app) as full:
        assert beat(full, "box-1", key, camera("cam-1"), camera("cam-2")).status_code == 200  # key now remembered
        layer = TestClient(HeartbeatFirst(router, api=app))
        answer = beat(layer, "box-1", key, camera("cam-1", fps=0.9), camera("cam-2", damaged_packets=4),
                      software_version="0.2.0", outbox_depth=7)
        assert (answer.status_code, answer.json()) == (200, {"box_id": "box-1", "cameras": 2, "changes": 0})
        assert answer.headers["content-type"] == "application/json"
        changed = beat(layer, "box-1", key, camera("cam-1", "stalled", fps=0.9), camera("cam-2", damaged_packets=4),
                       software_version="0.2.0", outbox_depth=7)
        assert changed.json() == {"box_id": "box-1", "cameras": 2, "changes": 1}
        assert router.paths == []
        admin = auth(make_key(backend, "admin"))
        box = full.get("/api/v1/boxes", headers=admin).json()[0]
        assert (box["software_version"], box["outbox_depth"], box["cameras_streaming"]) == ("0.2.0", 7, 1)
        cams = {c["name"]: c for c in full.get("/api/v1/cameras", headers=admin).json()}
        assert cams["cam-1"]["fps"] == 0.9 and cams["cam-2"]["damaged_packets"] == 4
        assert datetime.fromisoformat(cams["cam-2"]["last_frame_at"]).tzinfo is not None


def test_what_the_layer_does_not_take_goes_down_the_stack(backend: Settings) -> None:
    app, router = create_app(backend), Router()
    key, other = box_key(backend, "box-1"), box_key(backend, "box-2")
    with TestClient(app) as full:
        assert beat(full, "box-1", key, camera("cam-1")).status_code == 200
        assert beat(full, "box-2", other, camera("cam-9")).status_code == 200
    before = fleet_rows(backend)
    layer = TestClient(HeartbeatFirst(router, api=app))
    path, body = "/api/v1/boxes/box-1/heartbeat", heartbeat(camera("cam-1", "failed"))
    sent = [
        layer.post(path, json=body),  # no key
        layer.post(path, json=body, headers=auth("not-a-key")),  # a key not remembered: looked up below
        layer.post("/api/v1/boxes/box-2/heartbeat", json=body, headers=auth(key)),  # another box
        layer.post(path, json=heartbeat(camera("cam-1", "dancing")), headers=auth(key)),  # the route's 422
        layer.post(path, json=heartbeat(camera("cam-1"), software_version="a\u0000b"), headers=auth(key)),
        layer.post(path, content=b"x" * (backend.max_json_bytes + 1), headers=auth(key)),  # the body cap's
        layer.post(path, content=json.dumps(body), headers={**auth(key), "content-type": "text/plain"}),
        layer.post(path + "?x=1", json=body, headers=auth(key)),
        layer.post("/api/v1/boxes/bad box/heartbeat", json=body, headers=auth(key)),
    ]
    assert [r.status_code for r in sent] == [299] * len(sent)
    assert len(router.paths) == len(sent)
    assert fleet_rows(backend) == before


def test_refusals_on_the_fast_path_are_the_routes_own(client: TestClient, backend: Settings) -> None:
    a, b = box_key(backend, "box-a"), box_key(backend, "box-b")
    assert beat(client, "box-a", a, camera("cam-1")).status_code == 200
    assert beat(client, "box-b", b, camera("cam-2")).status_code == 200  # both keys remembered now
    before = fleet_rows(backend)
    resp = beat(client, "box-b", b, camera("cam-2"), camera("cam-1", "failed"))
    assert resp.status_code == 403 and "cam-1" in resp.json()["detail"] and "box-a" in resp.json()["detail"]
    resp = beat(client, "box-a", a, camera("cam-1"), software_version="a\u0000b")
    assert resp.status_code == 422 and resp.json()["detail"][0]["loc"] == ["body", "software_version"]
    assert fleet_rows(backend) == before
    admin = make_key(backend, "admin")
    assert beat(client, "box-b", admin, camera("cam-2")).json() == {"box_id": "box-b", "cameras": 1, "changes": 0}


class FullPath:
    """Counts the heartbeats that reached the full record_heartbeat from the layer."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return record_heartbeat(*args, **kwargs)


@pytest.fixture
def full_path(monkeypatch: pytest.MonkeyPatch) -> FullPath:
    counter = FullPath()
    monkeypatch.setattr(heartbeat_route, "record_heartbeat", counter)
    return counter


@pytest.fixture
def writer(backend: Settings) -> Iterator[LoopWriter]:
    """A loop writer of the test's own, driven from the test's thread."""
    w = LoopWriter(get_engine(backend.database_url))
    yield w
    w.close()


def _box(settings: Settings, box_id: str = "box-1") -> dict:
    with Session(get_engine(settings.database_url)) as s:
        box = s.get(EdgeBox, box_id)
        assert box is not None
        return box.model_dump()


def utcnow_plus(seconds: float) -> datetime:
    return datetime.now(timezone.utc) + timedelta(seconds=seconds)


def _cameras(client: TestClient, settings: Settings) -> dict[str, dict]:
    admin = auth(make_key(settings, "admin"))
    return {c["name"]: c for c in client.get("/api/v1/cameras", headers=admin).json()}


def test_the_digest_is_of_the_states_in_any_order() -> None:
    def digest(*cameras: dict) -> str:
        return states_digest(HeartbeatIn.model_validate(heartbeat(*cameras)).cameras)

    assert digest(camera("cam-1"), camera("cam-2", "stalled")) == digest(camera("cam-2", "stalled"), camera("cam-1"))
    assert digest(camera("cam-1"), camera("cam-2")) != digest(camera("cam-1"), camera("cam-2", "stalled"))
    assert digest(camera("cam-1")) != digest(camera("cam-1"), camera("cam-2"))
    assert digest(camera("cam-1", fps=1.0)) == digest(camera("cam-1", fps=2.0))  # figures ride in `live`


def test_the_loop_statement_stores_what_the_full_path_stores(backend: Settings, writer: LoopWriter) -> None:
    engine = get_engine(backend.database_url)
    t0 = datetime(2026, 12, 6, 19, 0, 0, 123456, tzinfo=timezone.utc)
    first = HeartbeatIn.model_validate(heartbeat(camera("cam-1"), camera("cam-2", "stalled")))
    second = HeartbeatIn.model_validate(heartbeat(camera("cam-2", "stalled", fps=0.5),
                                                  camera("cam-1", last_frame_at="2026-12-06T20:00:00+01:00"),
                                                  outbox_depth=2, software_version="0.3.0"))
    assert not writer.record("box-1", first, t0)  # a new box: the full path's
    assert fleet_rows(backend)["EdgeBox"] == 0
    with Session(engine) as s:
        record_heartbeat(s, SYSTEM, "box-1", first, now=t0)
    history = fleet_rows(backend)
    assert writer.record("box-1", second, t0 + timedelta(seconds=30))
    short = _box(backend)
    with Session(engine) as s:  # the same heartbeat the full way writes the same row
        assert record_heartbeat(s, SYSTEM, "box-1", second, now=t0 + timedelta(seconds=30)).changes == 0
    assert _box(backend) == short
    assert fleet_rows(backend) == history
    assert short["live"]["cam-1"]["last_frame_at"] == "2026-12-06T19:00:00+00:00"
    assert (short["outbox_depth"], short["software_version"], short["live"]["cam-2"]["fps"]) == (2, "0.3.0", 0.5)
    assert short["last_heartbeat_at"].replace(tzinfo=timezone.utc) == t0 + timedelta(seconds=30)
    changed = HeartbeatIn.model_validate(heartbeat(camera("cam-1"), camera("cam-2")))
    assert not writer.record("box-1", changed, t0 + timedelta(seconds=60))  # cam-2 streams again
    assert _box(backend) == short


def test_unchanged_heartbeats_skip_the_full_path_and_changes_take_it(backend: Settings, full_path: FullPath) -> None:
    key = box_key(backend, "box-1")
    with TestClient(create_app(backend)) as client:
        cams = (camera("cam-1"), camera("cam-2"), camera("cam-3", "disabled"))
        assert beat(client, "box-1", key, *cams).json()["changes"] == 3  # by the route: the key is new
        full_path.calls = 1  # as if the layer had sent it
        for depth in (1, 2):
            answer = beat(client, "box-1", key, *cams, outbox_depth=depth)
            assert (answer.status_code, answer.json()) == (200, {"box_id": "box-1", "cameras": 3, "changes": 0})
            assert answer.headers["content-type"] == "application/json"
        answer = beat(client, "box-1", key, *reversed(cams), outbox_depth=3)  # the same states, another order
        assert answer.json()["changes"] == 0
        assert full_path.calls == 1
        assert _box(backend)["outbox_depth"] == 3
        rows = fleet_rows(backend)
        answer = beat(client, "box-1", key, camera("cam-1"), camera("cam-2", "failed"), cams[2], outbox_depth=4)
        assert answer.json()["changes"] == 1 and full_path.calls == 2
        assert fleet_rows(backend)["CameraStateChange"] == rows["CameraStateChange"] + 1
        admin = auth(make_key(backend, "admin"))
        states = client.get("/api/v1/cameras/cam-2/states", headers=admin).json()
        assert (states[0]["from_state"], states[0]["to_state"]) == ("streaming", "failed")
        answer = beat(client, "box-1", key, camera("cam-1"), camera("cam-2", "failed"), cams[2], outbox_depth=5)
        assert answer.json()["changes"] == 0 and full_path.calls == 2
        assert _cameras(client, backend)["cam-2"]["state"] == "failed"
        assert _box(backend)["outbox_depth"] == 5
        dropped = beat(client, "box-1", key, camera("cam-1"), camera("cam-2", "failed"))  # cam-3 gone: still disabled
        assert dropped.json()["changes"] == 0 and full_path.calls == 3


def test_a_released_camera_is_declared_again_by_the_next_heartbeat(backend: Settings, full_path: FullPath) -> None:
    key = box_key(backend, "box-1")
    admin = auth(make_key(backend, "admin"))
    with TestClient(create_app(backend)) as client:
        assert beat(client, "box-1", key, camera("cam-1"), camera("cam-2")).status_code == 200  # by the route
        full_path.calls = 1
        assert beat(client, "box-1", key, camera("cam-1"), camera("cam-2")).json()["changes"] == 0
        assert full_path.calls == 1
        assert client.delete("/api/v1/boxes/box-1/cameras/cam-2", headers=admin).status_code == 204
        assert _cameras(client, backend)["cam-2"]["box_id"] is None
        answer = beat(client, "box-1", key, camera("cam-1"), camera("cam-2"))
        assert answer.json()["changes"] == 1 and full_path.calls == 2
        assert _cameras(client, backend)["cam-2"]["box_id"] == "box-1"


class HeldBox:
    """Another connection holding the box: its row locked (PostgreSQL) or the database's write
    lock (SQLite), as the sweep or another process's heartbeat holds it."""

    def __init__(self, settings: Settings, box_id: str = "box-1"):
        self.settings, self.box_id = settings, box_id
        self.release = threading.Event()

    def __enter__(self) -> "HeldBox":
        engine = get_engine(self.settings.database_url)
        if engine.dialect.name == "sqlite":
            self.sqlite = sqlite3.connect(engine.url.database, isolation_level=None, check_same_thread=False)
            self.sqlite.execute("BEGIN IMMEDIATE")
        else:
            self.conn = engine.connect()
            self.conn.begin()
            self.conn.execute(text("SELECT id FROM edge_box WHERE id = :box FOR UPDATE"), {"box": self.box_id})
        return self

    def __exit__(self, *exc: object) -> None:
        if hasattr(self, "sqlite"):
            self.sqlite.execute("ROLLBACK")
            self.sqlite.close()
        else:
            self.conn.rollback()
            self.conn.close()


def test_a_held_box_is_recorded_the_full_way_once_it_is_free(backend: Settings, writer: LoopWriter,
                                                             full_path: FullPath) -> None:
    key = box_key(backend, "box-1")
    plain = HeartbeatIn.model_validate(heartbeat(camera("cam-1")))
    with TestClient(create_app(backend)) as client:
        assert beat(client, "box-1", key, camera("cam-1")).status_code == 200  # by the route: the key is new
        full_path.calls = 1
        before = _box(backend)
        with HeldBox(backend):
            assert not writer.record("box-1", plain, utcnow_plus(1))  # at once: it waits for nobody
            answers: list = []
            sender = threading.Thread(target=lambda: answers.append(beat(client, "box-1", key, camera("cam-1"),
                                                                         outbox_depth=9)))
            sender.start()
            deadline = time.monotonic() + 30
            while full_path.calls < 2 and time.monotonic() < deadline:  # the layer handed it to the full path
                time.sleep(0.01)
            assert full_path.calls == 2
        sender.join(60)
        assert not sender.is_alive()
        assert (answers[0].status_code, answers[0].json()["changes"]) == (200, 0)
        assert _box(backend)["outbox_depth"] == 9 and _box(backend)["last_heartbeat_at"] > before["last_heartbeat_at"]
        assert writer.record("box-1", plain, utcnow_plus(2))  # free again: the short way


def test_the_loop_does_not_wait_for_a_writer_of_its_own_process(sqlite_backend: Settings) -> None:
    engine = get_engine(sqlite_backend.database_url)
    plain = HeartbeatIn.model_validate(heartbeat(camera("cam-1")))
    with Session(engine) as s:
        record_heartbeat(s, SYSTEM, "box-1", plain)
    writer = LoopWriter(engine)
    try:
        slot = _writer_slot(engine)
        with slot:
            assert not writer.record("box-1", plain, utcnow_plus(1))
        assert writer.record("box-1", plain, utcnow_plus(1))
    finally:
        writer.close()


def test_a_box_with_no_camera_changes_coming_back_tells_its_supervisors(backend: Settings,
                                                                       writer: LoopWriter) -> None:
    t0 = datetime.now(timezone.utc) - timedelta(days=1)
    engine = get_engine(backend.database_url)

    def beat_at(minutes: float) -> dict:
        """As the fast layer records it: the loop's statement first, the full path if that declines."""
        beat, now = HeartbeatIn.model_validate(heartbeat(camera("cam-1", "disabled"), interval_s=30)), \
            t0 + timedelta(minutes=minutes)
        if writer.record("box-1", beat, now):
            return {"changes": 0, "short": True}
        with Session(engine) as s:
            return {**record_heartbeat(s, SYSTEM, "box-1", beat, now=now).model_dump(), "short": False}

    beat_at(0)
    assert beat_at(1) == {"changes": 0, "short": True}
    with Session(engine) as s:
        assert sweep_fleet(s, backend, now=t0 + timedelta(minutes=5))["boxes_silent"] == 1
    assert beat_at(6)["short"] is False
    assert [n.box_id for n in notifications(backend, "box_back")] == ["box-1"]
    with Session(engine) as s:
        box = s.get(EdgeBox, "box-1")
        assert box is not None and box.offline_since is None and box.offline_alert_at is None
    assert beat_at(7) == {"changes": 0, "short": True}
    # An alert out with the digest left as it was (the WHERE alone): still the full path, told once more.
    with Session(engine) as s:
        s.execute(update(EdgeBox).where(EdgeBox.id == "box-1").values(offline_alert_at=t0))  # type: ignore[arg-type]
        s.commit()
    assert beat_at(8)["short"] is False
    assert len(notifications(backend, "box_back")) == 2


def test_a_broken_loop_connection_is_replaced(backend: Settings, writer: LoopWriter) -> None:
    plain = HeartbeatIn.model_validate(heartbeat(camera("cam-1")))
    with Session(get_engine(backend.database_url)) as s:
        record_heartbeat(s, SYSTEM, "box-1", plain)
    assert writer.record("box-1", plain, utcnow_plus(1))
    writer._conn.close()  # as a database restart leaves it
    before = _box(backend)
    assert not writer.record("box-1", plain, utcnow_plus(2))  # declined, nothing written: the full path's
    assert _box(backend) == before
    assert writer.record("box-1", plain, utcnow_plus(3))  # a new connection
    assert _box(backend)["last_heartbeat_at"] > before["last_heartbeat_at"]


def test_the_loop_connection_does_not_wait_for_the_disk(backend: Settings, writer: LoopWriter) -> None:
    """A heartbeat's times are written again by the next one: its commit need not be flushed
    (SQLite's synchronous=NORMAL under WAL keeps the file whole), while the pool's SQLite
    connections, which write orders and events, keep flushing theirs."""
    plain = HeartbeatIn.model_validate(heartbeat(camera("cam-1")))
    engine = get_engine(backend.database_url)
    with Session(engine) as s:
        record_heartbeat(s, SYSTEM, "box-1", plain)
    assert writer.record("box-1", plain, utcnow_plus(1))
    if engine.dialect.name == "sqlite":
        assert writer._conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL, SQLite's default
    else:  # (the tests' throwaway cluster has it off for every session anyway)
        assert writer._conn.execute("SHOW synchronous_commit").fetchone()[0] == "off"


def test_loop_parameters_in_postgres_text_form() -> None:
    from api.heartbeat_loop import as_text

    shanghai = datetime(2026, 12, 7, 11, 0, tzinfo=timezone(timedelta(hours=8)))
    assert as_text(shanghai) == b"2026-12-07T11:00:00+08:00"
    assert [as_text(v) for v in (None, "box-1", 30.0, 2, True, {"cam-1": {"fps": 0.5}})] == \
        [None, b"box-1", b"30.0", b"2", b"true", b'{"cam-1": {"fps": 0.5}}']
    # libpq would end the text at the NUL, and a naive time would be read in the session's zone:
    # refused, so the heartbeat goes the full way instead of storing something else.
    with pytest.raises(ValueError):
        as_text("0.1\0evil")
    with pytest.raises(ValueError):
        as_text(datetime(2026, 12, 7, 11, 0))


def test_the_loop_writes_times_whatever_the_sessions_time_zone(backend: Settings, writer: LoopWriter) -> None:
    engine = get_engine(backend.database_url)
    if engine.dialect.name == "postgresql":  # the loop's new connection takes the database's zone
        with engine.connect() as conn:
            conn.exec_driver_sql(f"ALTER DATABASE {engine.url.database} SET timezone = 'Asia/Shanghai'")
            conn.commit()
    plain = HeartbeatIn.model_validate(heartbeat(camera("cam-1")))
    with Session(engine) as s:
        record_heartbeat(s, SYSTEM, "box-1", plain)
    at = datetime(2026, 12, 7, 3, 0, 0, 250000, tzinfo=timezone.utc)
    assert writer.record("box-1", plain, at)
    if engine.dialect.name == "postgresql":
        assert writer._conn.execute("SHOW timezone").fetchone()[0] == "Asia/Shanghai"
    stored = _box(backend)["last_heartbeat_at"]
    assert (stored if stored.tzinfo else stored.replace(tzinfo=timezone.utc)) == at  # SQLite's come back naive
