"""An edge key speaks only for its own box and the cameras that box declared (403 otherwise,
with nothing changed)."""

from __future__ import annotations

import pytest

from api.box_binding import forget_owners
from tests.api.factories import auth, counts, event_json, jpeg, order_row, post, set_order
from tests.api.fleet_helpers import beat, box_key, camera, fleet_rows, unbound_edge_key


@pytest.fixture(autouse=True)
def _fresh_owner_cache():
    forget_owners()  # each test's database is new; so must be what this process remembers of it
    yield
    forget_owners()


def test_a_key_heartbeats_only_as_its_own_box(client, backend):
    a, b = box_key(backend, "box-a"), box_key(backend, "box-b")
    assert beat(client, "box-a", a, camera("cam-1")).status_code == 200
    before = fleet_rows(backend)
    resp = beat(client, "box-b", a, camera("cam-9"))
    assert resp.status_code == 403 and "box-a" in resp.json()["detail"]
    resp = beat(client, "box-a", unbound_edge_key(backend), camera("cam-1", "failed"))
    assert resp.status_code == 403 and "belongs to no box" in resp.json()["detail"]
    # Box B reporting box A's camera: refused whole, B's own camera included.
    resp = beat(client, "box-b", b, camera("cam-2"), camera("cam-1", "failed"))
    assert resp.status_code == 403 and "cam-1" in resp.json()["detail"] and "box-a" in resp.json()["detail"]
    assert fleet_rows(backend) == before
    assert {c["name"]: c["state"] for c in client.get("/api/v1/cameras").json()} == {"cam-1": "streaming"}


def test_events_only_for_cameras_of_the_keys_box(client, backend):
    a, b = box_key(backend, "box-a"), box_key(backend, "box-b")
    beat(client, "box-a", a, camera("cam-1"))
    beat(client, "box-b", b, camera("cam-2"))
    before = counts(backend)
    for key, cam in ((b, "cam-1"), (a, "cam-2"), (unbound_edge_key(backend), "cam-1"), (a, "cam-3")):
        resp = post(client, event_json(camera=cam), headers=auth(key))
        assert resp.status_code == 403, (cam, resp.text)
        assert cam in resp.json()["detail"]
    assert counts(backend) == before
    assert post(client, event_json(camera="cam-1"), headers=auth(a)).status_code == 201
    assert post(client, event_json(camera="cam-2"), headers=auth(b)).status_code == 201
    # A key without a box still speaks for cameras no box holds (one box without a fleet).
    assert post(client, event_json(camera="cam-7"), headers=auth(unbound_edge_key(backend))).status_code == 201


def test_camera_checks_only_for_cameras_of_the_keys_box(client, backend):
    a, b = box_key(backend, "box-a"), box_key(backend, "box-b")
    beat(client, "box-a", a, camera("cam-1"))
    beat(client, "box-b", b, camera("cam-2"))
    order_id = post(client, event_json(camera="cam-1"), headers=auth(a)).json()["order_id"]
    set_order(backend, order_id, state="resolved")
    assert client.get("/api/v1/verifications", params={"camera": "cam-1"}, headers=auth(b)).status_code == 403
    assert client.get("/api/v1/verifications", params={"camera": "cam-1"}, headers=auth(a)).status_code == 200
    resp = client.post(f"/api/v1/verifications/{order_id}", data={"result": "present"},
                       files={"frame": ("f.jpg", jpeg(), "image/jpeg")}, headers=auth(b))
    assert resp.status_code == 403, resp.text
    assert order_row(backend, order_id).state == "resolved"
    resp = client.post(f"/api/v1/verifications/{order_id}", data={"result": "present"},
                       files={"frame": ("f.jpg", jpeg(), "image/jpeg")}, headers=auth(a))
    assert resp.status_code == 200 and resp.json()["state"] == "reopened"


def test_an_admin_releases_a_camera_for_another_box(client, backend):
    a, b = box_key(backend, "box-a"), box_key(backend, "box-b")
    beat(client, "box-a", a, camera("cam-1"))
    assert beat(client, "box-b", b, camera("cam-1")).status_code == 403
    assert client.delete("/api/v1/boxes/box-b/cameras/cam-1").status_code == 404
    assert client.delete("/api/v1/boxes/box-a/cameras/cam-1").status_code == 204
    assert beat(client, "box-b", b, camera("cam-1")).status_code == 200
    assert post(client, event_json(camera="cam-1"), headers=auth(b)).status_code == 201
    assert post(client, event_json(camera="cam-1"), headers=auth(a)).status_code == 403
    history = client.get("/api/v1/cameras/cam-1/states").json()
    assert [h["box_id"] for h in history] == ["box-b", "box-a"]  # its history stays


def test_box_keys_are_made_through_the_api_for_edge_keys_only(client, backend):
    resp = client.post("/api/v1/keys", json={"name": "box 3", "role": "edge", "box_id": "box-3"})
    assert resp.status_code == 201 and resp.json()["box_id"] == "box-3"
    assert beat(client, "box-3", resp.json()["key"], camera("cam-3")).status_code == 200
    resp = client.post("/api/v1/keys", json={"name": "r", "role": "reviewer", "box_id": "box-3"})
    assert resp.status_code == 422 and resp.json()["detail"][0]["loc"] == ["body", "box_id"]
    resp = client.post("/api/v1/keys", json={"name": "r", "role": "edge", "box_id": "box 3"})
    assert resp.status_code == 422 and resp.json()["detail"][0]["loc"] == ["body", "box_id"]
