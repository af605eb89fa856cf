"""Zones and masks edited centrally: checked polygons, and a box configuration with an ETag."""

from __future__ import annotations

import pytest

from tests.api.factories import auth
from tests.api.fleet_helpers import beat, box_key, camera

SIDEWALK = {"polygon": [[0, 400], [640, 330], [700, 720], [0, 720]], "issue_types": ["street_vending"]}
ZONES = {"frame_width": 1280, "frame_height": 720, "zones": {"sidewalk": SIDEWALK},
         "masks": [{"polygon": [[0, 600], [400, 600], [400, 720]], "hours": ["18:00-23:00"]}]}


def test_a_box_pulls_its_cameras_zones_with_an_etag(client, backend):
    a, b = box_key(backend, "box-a"), box_key(backend, "box-b")
    beat(client, "box-a", a, camera("cam-1"), camera("cam-2"))
    beat(client, "box-b", b, camera("cam-9"))
    first = client.get("/api/v1/boxes/box-a/config", headers=auth(a))
    assert first.status_code == 200 and first.json()["cameras"] == {}

    resp = client.put("/api/v1/cameras/cam-1/zones", json=ZONES)
    assert resp.status_code == 200, resp.text
    assert resp.json()["zones"]["sidewalk"]["polygon"][1] == [640, 330] and resp.json()["updated_by"] == "test-admin"
    assert client.put("/api/v1/cameras/cam-9/zones", json=ZONES).status_code == 200
    assert client.get("/api/v1/cameras/cam-1/zones").json()["masks"][0]["hours"] == ["18:00-23:00"]

    got = client.get("/api/v1/boxes/box-a/config", headers=auth(a))
    assert got.status_code == 200 and list(got.json()["cameras"]) == ["cam-1"]  # not box B's camera
    etag = got.headers["etag"]
    assert etag != first.headers["etag"] and etag.strip('"') == got.json()["etag"]
    same = client.get("/api/v1/boxes/box-a/config", headers={**auth(a), "If-None-Match": etag})
    assert same.status_code == 304 and same.content == b""

    moved = {**ZONES, "zones": {"sidewalk": {**SIDEWALK, "polygon": [[0, 380], [640, 330], [700, 720], [0, 720]]}}}
    assert client.put("/api/v1/cameras/cam-1/zones", json=moved).status_code == 200
    changed = client.get("/api/v1/boxes/box-a/config", headers={**auth(a), "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag

    assert client.get("/api/v1/boxes/box-a/config", headers=auth(b)).status_code == 403
    assert client.delete("/api/v1/cameras/cam-1/zones").status_code == 204
    assert client.get("/api/v1/boxes/box-a/config", headers=auth(a)).json()["cameras"] == {}
    assert client.get("/api/v1/cameras/cam-1/zones").status_code == 404


@pytest.mark.parametrize("polygon, why", [
    ([[10, 10], [100, 10], [10, 10]], "does not close"),  # 2 distinct corners
    ([[10, 10], [100, 10], [100, 10], [10, 100]], "does not close"),  # a corner twice
    ([[0, 0], [100, 100], [100, 0], [0, 100]], "self-intersects"),  # a bow tie
    ([[0, 0], [1300, 0], [0, 100]], "outside the 1280x720 frame"),
    ([[0, 0], [100, 100], [200, 200]], "no area"),
])
def test_bad_polygons_are_refused_with_the_reason_and_nothing_is_stored(client, backend, polygon, why):
    beat(client, "box-a", box_key(backend, "box-a"), camera("cam-1"))
    resp = client.put("/api/v1/cameras/cam-1/zones", json={**ZONES, "zones": {"z1": {"polygon": polygon}}})
    assert resp.status_code == 422, resp.text
    detail = resp.json()["detail"][0]
    assert detail["loc"] == ["body", "zones", "z1", "polygon"] and why in detail["msg"], detail
    resp = client.put("/api/v1/cameras/cam-1/zones", json={**ZONES, "masks": [{"polygon": polygon}]})
    assert resp.status_code == 422 and resp.json()["detail"][0]["loc"] == ["body", "masks", "0", "polygon"]
    assert client.get("/api/v1/cameras/cam-1/zones").status_code == 404


def test_other_bad_zone_input_is_422_naming_the_field(client, backend):
    beat(client, "box-a", box_key(backend, "box-a"), camera("cam-1"))
    for body, loc in [({**ZONES, "masks": [{"polygon": [[0, 0], [9, 0], [0, 9]], "hours": ["25:00-26:00"]}]},
                       ["body", "masks", 0, "hours"]),
                      ({**ZONES, "zones": {"z1": {**SIDEWALK, "issue_types": ["potholes"]}}},
                       ["body", "zones", "z1", "issue_types", 0]),
                      ({**ZONES, "zones": {"bad name": SIDEWALK}}, ["body", "zones"]),
                      ({**ZONES, "frame_width": 0}, ["body", "frame_width"])]:
        resp = client.put("/api/v1/cameras/cam-1/zones", json=body)
        assert resp.status_code == 422 and resp.json()["detail"][0]["loc"] == loc, resp.text
    assert client.put("/api/v1/cameras/nope/zones", json=ZONES).status_code == 404
