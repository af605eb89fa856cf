"""The edge's heartbeat: built from /healthz, sent to the API, refused for another box's key."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from fastapi.testclient import TestClient

from api.fleet_schemas import ModelInfo
from api.db import upgrade_database
from api.main import create_app
from streams.config import EdgeConfig
from streams.heartbeat import HeartbeatBuilder, HeartbeatSender
from tests.api.conftest import sqlite_settings
from tests.api.factories import auth, make_key
from tests.api.fleet_helpers import box_key

MODEL = ModelInfo(name="streetwatch-demo", version="1", sha256="cd" * 32)


def config(box_id: str = "box-1") -> EdgeConfig:
    return EdgeConfig.model_validate({
        "api": {"url": "http://testserver", "box_id": box_id, "heartbeat_s": 5},
        "cameras": [{"name": "c1", "url": "rtsp://cam/1", "grid_id": "g-1", "lat": 31.2, "lon": 121.4},
                    {"name": "c2", "url": "rtsp://cam/2"},
                    {"name": "c3", "url": "rtsp://cam/3", "enabled": False},
                    {"name": "c4", "url": "rtsp://cam/4"}]})


def health(c1_frames: int, c2_state: str = "stalled") -> dict:
    return {"pending_events": 4, "cameras": {
        "c1": {"state": "streaming", "frames_analysed": c1_frames, "corrupt_packets": 2, "last_frame_at": 1.8e9},
        "c2": {"state": c2_state, "frames_analysed": 0, "corrupt_packets": 0, "last_frame_at": None},
        "c4": {"state": "starting", "frames_analysed": 0, "corrupt_packets": 0, "last_frame_at": None}}}


def test_the_heartbeat_says_what_healthz_says():
    builder = HeartbeatBuilder(config())
    first = builder.build(health(10), MODEL, now=100.0)
    beat = builder.build(health(20), MODEL, now=110.0)
    cams = {c.name: c for c in beat.cameras}
    assert {n: c.state for n, c in cams.items()} == {"c1": "streaming", "c2": "stalled", "c3": "disabled",
                                                     "c4": "reconnecting"}
    assert cams["c1"].fps == 1.0 and {c.name: c.fps for c in first.cameras}["c1"] == 0.0  # 10 frames in 10 s
    assert cams["c1"].last_frame_at == datetime.fromtimestamp(1.8e9, timezone.utc)
    assert (cams["c1"].damaged_packets, cams["c1"].grid_id, cams["c1"].lat) == (2, "g-1", 31.2)
    assert beat.outbox_depth == 4 and beat.interval_s == 5 and beat.model == MODEL


def test_the_box_reports_to_the_api_and_a_wrong_key_is_logged_once(tmp_path, caplog):
    sqlite_backend = sqlite_settings(tmp_path)
    upgrade_database(sqlite_backend.database_url)
    app = create_app(sqlite_backend)
    with TestClient(app, headers=auth(box_key(sqlite_backend, "box-1"))) as edge_client, \
            TestClient(app, headers=auth(box_key(sqlite_backend, "box-2"))) as stolen:
        sender = HeartbeatSender(config(), lambda: health(10), lambda: (MODEL, None), client=edge_client)
        assert sender.beat() == 200
        admin = TestClient(app, headers=auth(make_key(sqlite_backend, "admin")))
        cams = {c["name"]: c for c in admin.get("/api/v1/cameras").json()}
        assert {n: c["state"] for n, c in cams.items()} == {"c1": "streaming", "c2": "stalled", "c3": "disabled",
                                                            "c4": "reconnecting"}
        box = admin.get("/api/v1/boxes").json()[0]
        assert (box["id"], box["outbox_depth"], box["model"]["sha256"]) == ("box-1", 4, "cd" * 32)

        wrong = HeartbeatSender(config(), lambda: health(10), lambda: (MODEL, None), client=stolen)
        with caplog.at_level(logging.ERROR, logger="streetwatch.edge"):
            assert wrong.beat() == 403
            assert wrong.beat() == 403
        assert sum("403" in r.message for r in caplog.records) == 1
        assert admin.get("/api/v1/boxes").json()[0]["outbox_depth"] == 4  # nothing changed
