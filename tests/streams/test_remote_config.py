"""Central zones reach the box and apply without a restart: the zones change, the tracker and
the confirmation timers do not; 304 while nothing changes; deleted → the YAML's again; the last
configuration is kept for a restart without the API."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.db import upgrade_database
from api.main import create_app
from streams.config import EdgeConfig
from streams.pipeline import EdgePipeline
from streams.remote_config import RemoteZones
from tests.api.conftest import sqlite_settings
from tests.api.factories import auth, make_key
from tests.api.fleet_helpers import box_key, camera, heartbeat
from tests.streams.test_edge_faults import NoDetections, NullUploader
from vision.detections import Detections

YAML_ZONE = [[0, 0], [640, 0], [640, 720], [0, 720]]  # the left half
BOX = (100, 500, 200, 600)  # a clutter pile in the left half, bottom centre at (150, 600)


def config(tmp_path) -> EdgeConfig:
    return EdgeConfig.model_validate({
        "api": {"url": "http://testserver", "box_id": "box-1"}, "outbox": {"path": str(tmp_path / "outbox")},
        "issues": {"clutter": {"confirm_seconds": 10, "min_hits": 3}},
        "cameras": [{"name": "cam-1", "url": "rtsp://cam/1", "zones": {"left": {"polygon": YAML_ZONE}}}]})


@pytest.fixture
def api(tmp_path):
    settings = sqlite_settings(tmp_path)
    upgrade_database(settings.database_url)
    app = create_app(settings)
    key = box_key(settings, "box-1")
    with TestClient(app, headers=auth(key)) as edge, TestClient(app, headers=auth(make_key(settings, "admin"))) as admin:
        assert edge.post("/api/v1/boxes/box-1/heartbeat", json=heartbeat(camera("cam-1"))).status_code == 200
        yield edge, admin


def central(polygon: list[list[float]]) -> dict:
    return {"frame_width": 1280, "frame_height": 720, "zones": {"z": {"polygon": polygon}}, "masks": []}


def confirmed_at(edge: EdgePipeline, apply_at: float | None = None, remote: RemoteZones | None = None) -> float | None:
    pile = Detections(np.array([BOX], dtype=np.float32), np.array([0.9]), np.array([1]))
    for t in range(0, 20):
        if apply_at is not None and t == apply_at:
            assert remote is not None and remote.poll()
        if edge.analyse("cam-1", pile, 1000.0 + t, (1280, 720)):
            return float(t)
    return None


def test_a_zone_change_applies_between_frames_and_keeps_the_confirmation_timer(api, tmp_path):
    edge_client, admin = api
    baseline = confirmed_at(EdgePipeline(config(tmp_path), detector=NoDetections(), uploader=NullUploader()))
    assert baseline is not None

    pipeline = EdgePipeline(config(tmp_path), detector=NoDetections(), uploader=NullUploader())
    remote = RemoteZones(pipeline, edge_client, "box-1", 60, tmp_path / "outbox" / "central-zones.json")
    tracker = pipeline.cameras["cam-1"].tracker
    # Moved elsewhere but still holding the pile: half-way through its confirmation.
    assert admin.put("/api/v1/cameras/cam-1/zones", json=central([[0, 300], [900, 300], [900, 720], [0, 720]])) \
        .status_code == 200
    assert confirmed_at(pipeline, apply_at=baseline // 2, remote=remote) == baseline
    assert pipeline.cameras["cam-1"].tracker is tracker
    assert pipeline.cameras["cam-1"].zones[0].polygon.reshape(-1, 2).tolist()[1] == [900, 300]

    # A zone that leaves the pile out: nothing is confirmed any more.
    away = EdgePipeline(config(tmp_path), detector=NoDetections(), uploader=NullUploader())
    assert admin.put("/api/v1/cameras/cam-1/zones", json=central([[700, 0], [1280, 0], [1280, 720]])).status_code == 200
    assert confirmed_at(away, apply_at=0, remote=RemoteZones(away, edge_client, "box-1", 60, None)) is None


def test_unchanged_is_a_304_deleted_is_the_yaml_and_a_restart_keeps_the_last_config(api, tmp_path):
    edge_client, admin = api
    pipeline = EdgePipeline(config(tmp_path), detector=NoDetections(), uploader=NullUploader())
    cache = tmp_path / "outbox" / "central-zones.json"
    remote = RemoteZones(pipeline, edge_client, "box-1", 60, cache)
    assert admin.put("/api/v1/cameras/cam-1/zones", json=central([[0, 300], [900, 300], [900, 720]])).status_code == 200
    assert remote.poll() is True
    assert remote.poll() is False and remote.changes == 1  # 304: nothing to do
    zone = lambda p: p.cameras["cam-1"].zones[0].polygon.reshape(-1, 2).tolist()  # noqa: E731

    restarted = EdgePipeline(config(tmp_path), detector=NoDetections(), uploader=NullUploader())
    offline = RemoteZones(restarted, TestClient(create_app(sqlite_settings(tmp_path))), "box-1", 60, cache)
    offline.load_cached()  # before any answer from the API
    assert zone(restarted) == [[0, 300], [900, 300], [900, 720]]

    assert admin.delete("/api/v1/cameras/cam-1/zones").status_code == 204
    assert remote.poll() is True
    assert zone(pipeline) == YAML_ZONE
