"""Boxes and cameras known to the API: heartbeats, their history of changes, the listings."""

from __future__ import annotations

from datetime import datetime

from tests.api.fleet_helpers import beat, box_key, camera, fleet_rows, heartbeat


def test_a_heartbeat_makes_the_box_and_its_cameras_known(client, backend):
    key = box_key(backend, "box-1")
    resp = beat(client, "box-1", key, camera("cam-1", grid_id="g-1", lat=31.2, lon=121.4),
                camera("cam-2", "stalled", damaged_packets=7), outbox_depth=3)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"box_id": "box-1", "cameras": 2, "changes": 2}

    boxes = client.get("/api/v1/boxes").json()
    assert len(boxes) == 1
    box = boxes[0]
    assert box["id"] == "box-1" and box["online"] and box["outbox_depth"] == 3
    assert box["model"] == {"name": "streetwatch-v2", "version": "2", "sha256": "ab" * 32}
    assert (box["cameras"], box["cameras_streaming"]) == (2, 1)

    cams = {c["name"]: c for c in client.get("/api/v1/cameras").json()}
    assert cams["cam-1"]["state"] == "streaming" and cams["cam-1"]["box_id"] == "box-1"
    assert (cams["cam-1"]["grid_id"], cams["cam-1"]["lat"]) == ("g-1", 31.2)
    assert cams["cam-2"]["state"] == "stalled" and cams["cam-2"]["damaged_packets"] == 7
    assert cams["cam-1"]["fps"] == 0.5 and cams["cam-1"]["last_seen"] is not None
    assert datetime.fromisoformat(cams["cam-1"]["last_frame_at"]).tzinfo is not None
    only_stalled = client.get("/api/v1/cameras", params={"state": "stalled"}).json()
    assert [c["name"] for c in only_stalled] == ["cam-2"]
    assert [c["name"] for c in client.get("/api/v1/cameras", params={"grid_id": "g-1"}).json()] == ["cam-1"]


def test_history_grows_with_state_changes_not_with_heartbeats(client, backend):
    key = box_key(backend, "box-1")
    assert beat(client, "box-1", key, camera("cam-1"), camera("cam-2")).status_code == 200
    before = fleet_rows(backend)
    for _ in range(5):  # the same states again: no row but the box's own update
        resp = beat(client, "box-1", key, camera("cam-1", fps=0.7), camera("cam-2", damaged_packets=3))
        assert resp.json()["changes"] == 0
    assert fleet_rows(backend) == before
    cams = {c["name"]: c for c in client.get("/api/v1/cameras").json()}
    assert cams["cam-1"]["fps"] == 0.7 and cams["cam-2"]["damaged_packets"] == 3  # the latest figures

    assert beat(client, "box-1", key, camera("cam-1", "reconnecting"), camera("cam-2")).json()["changes"] == 1
    assert beat(client, "box-1", key, camera("cam-1", "stalled"), camera("cam-2")).json()["changes"] == 1
    assert fleet_rows(backend)["CameraStateChange"] == before["CameraStateChange"] + 2
    history = client.get("/api/v1/cameras/cam-1/states").json()
    assert [(h["from_state"], h["to_state"]) for h in history] == [
        ("reconnecting", "stalled"), ("streaming", "reconnecting"), (None, "streaming")]
    assert client.get("/api/v1/cameras/nope/states").status_code == 404


def test_a_camera_dropped_from_the_boxs_config_becomes_disabled(client, backend):
    key = box_key(backend, "box-1")
    beat(client, "box-1", key, camera("cam-1"), camera("cam-2"))
    assert beat(client, "box-1", key, camera("cam-1")).json()["changes"] == 1
    cams = {c["name"]: c["state"] for c in client.get("/api/v1/cameras").json()}
    assert cams == {"cam-1": "streaming", "cam-2": "disabled"}


def test_malformed_heartbeats_are_422_naming_the_field_and_change_nothing(client, backend):
    key = box_key(backend, "box-1")
    beat(client, "box-1", key, camera("cam-1"))
    before = fleet_rows(backend)
    cases = [
        (heartbeat(camera("cam-1", "dancing")), ["body", "cameras", 0, "state"]),
        (heartbeat(camera("cam-1", "offline")), ["body", "cameras", 0, "state"]),  # the API's word, not the box's
        (heartbeat(camera("cam-1", fps=-1)), ["body", "cameras", 0, "fps"]),
        (heartbeat(camera("cam 1")), ["body", "cameras", 0, "name"]),
        (heartbeat(camera("cam-1"), camera("cam-1")), ["body", "cameras"]),
        (heartbeat(camera("cam-1"), interval_s=0), ["body", "interval_s"]),
        (heartbeat(camera("cam-1"), model={"name": "m", "version": "1", "sha256": "xyz"}), ["body", "model", "sha256"]),
        (heartbeat(camera("cam-1"), colour="red"), ["body", "colour"]),
        ({"cameras": []}, ["body", "software_version"]),
    ]
    for body, loc in cases:
        resp = client.post("/api/v1/boxes/box-1/heartbeat", json=body, headers={"Authorization": f"Bearer {key}"})
        assert resp.status_code == 422, (body, resp.text)
        assert resp.json()["detail"][0]["loc"] == loc, resp.text
    assert client.post("/api/v1/boxes/bad box/heartbeat", json=heartbeat(),
                       headers={"Authorization": f"Bearer {key}"}).status_code == 422
    assert fleet_rows(backend) == before
