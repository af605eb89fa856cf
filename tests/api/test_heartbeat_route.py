"""Heartbeats answered before the middleware stack (api/heartbeat_route.py) and unchanged
ones written on the driver's cursor (api/driver_sql.py): the same answers, the same rows,
and every request the layer does not take is the route's to answer."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session
from starlette.types import Receive, Scope, Send

from api.auth import SYSTEM, forget_keys
from api.db import get_engine
from api.fleet_alerts import sweep_fleet
from api.fleet_models import EdgeBox
from api.fleet_schemas import HeartbeatIn
from api.heartbeat_route import HeartbeatFirst
from api.heartbeats import record_heartbeat, record_unchanged
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


def test_the_driver_path_stores_what_the_full_path_stores(backend: Settings) -> None:
    now = datetime(2026, 12, 6, 19, 0, 0, 123456, tzinfo=timezone.utc)
    beat_body = heartbeat(camera("cam-1", last_frame_at="2026-12-06T20:00:00+01:00"), outbox_depth=2)
    rows = []
    for driver in (False, True):  # the first creates the camera, the second changes nothing
        beat = HeartbeatIn.model_validate(beat_body)
        if driver:
            assert record_unchanged(get_engine(backend.database_url), SYSTEM, "box-1", beat, now=now) is not None
        else:
            assert record_unchanged(get_engine(backend.database_url), SYSTEM, "box-1", beat, now=now) is None
            with Session(get_engine(backend.database_url)) as s:
                record_heartbeat(s, SYSTEM, "box-1", beat, now=now)
        with Session(get_engine(backend.database_url)) as s:
            box = s.get(EdgeBox, "box-1")
            assert box is not None
            rows.append(box.model_dump())
    assert rows[0] == rows[1]
    assert rows[1]["live"]["cam-1"]["last_frame_at"] == "2026-12-06T19:00:00+00:00"
    assert rows[1]["last_heartbeat_at"].replace(tzinfo=timezone.utc) == now


def test_a_box_with_no_camera_changes_coming_back_tells_its_supervisors(backend: Settings) -> None:
    t0 = datetime.now(timezone.utc) - timedelta(days=1)

    engine = get_engine(backend.database_url)

    def beat_at(minutes: float) -> dict:
        """As the fast layer records it: the driver path first, the full one if that declines."""
        beat, now = HeartbeatIn.model_validate(heartbeat(camera("cam-1", "disabled"), interval_s=30)), \
            t0 + timedelta(minutes=minutes)
        if (answer := record_unchanged(engine, SYSTEM, "box-1", beat, now=now)) is None:
            with Session(engine) as s:
                answer = record_heartbeat(s, SYSTEM, "box-1", beat, now=now)
        return answer.model_dump()

    beat_at(0)
    assert beat_at(1)["changes"] == 0
    with Session(engine) as s:
        assert sweep_fleet(s, backend, now=t0 + timedelta(minutes=5))["boxes_silent"] == 1
    assert beat_at(6)["changes"] == 0
    assert [n.box_id for n in notifications(backend, "box_back")] == ["box-1"]
    with Session(engine) as s:
        box = s.get(EdgeBox, "box-1")
        assert box is not None and box.offline_since is None and box.offline_alert_at is None
