"""Admin input has limits too (issue 19, item 13): a grid outline of 100k corners and a worker with
10,000 copies of one grid id were accepted, a camera could be put in a grid that does not exist,
and PATCH /workers ignored unknown fields such as `id`."""

from __future__ import annotations

from tests.api.factories import add_grid, add_worker, counts


def _locs(resp) -> list[list]:
    return [e["loc"] for e in resp.json()["detail"]]


def test_a_grid_outline_has_at_most_2000_corners(client):
    ring = [[31.2 + i * 1e-6, 121.4 + (i % 2) * 1e-6] for i in range(2001)]
    resp = client.post("/api/v1/grids", json={"id": "g-big", "polygon": ring})
    assert resp.status_code == 422 and "2000 corners" in resp.text and ["body", "polygon"] in _locs(resp)
    assert client.post("/api/v1/grids", json={"id": "g-ok", "polygon": ring[:2000]}).status_code == 201
    assert client.patch("/api/v1/grids/g-ok", json={"polygon": ring}).status_code == 422


def test_worker_grid_ids_are_distinct_and_few(client):
    add_grid(client, "g-1")
    resp = client.post("/api/v1/workers", json={"name": "W", "grid_ids": ["g-1"] * 10_000})
    assert resp.status_code == 422 and _locs(resp)[0][:2] == ["body", "grid_ids"], resp.text[:300]
    resp = client.post("/api/v1/workers", json={"name": "W", "grid_ids": ["g-1", "g-1"]})
    assert resp.status_code == 422 and "more than once" in resp.text
    worker = add_worker(client, "W", ["g-1"])
    assert client.patch(f"/api/v1/workers/{worker}", json={"grid_ids": ["g-1", "g-1"]}).status_code == 422
    assert client.post("/api/v1/grids", json={"id": "g-2", "cameras": ["c"] * 3}).status_code == 422


def test_a_camera_can_only_be_placed_in_a_grid_that_exists(client, backend):
    resp = client.put("/api/v1/cameras/cam-z", json={"grid_id": "nope"})
    assert resp.status_code == 422 and _locs(resp) == [["body", "grid_id"]], resp.text
    assert counts(backend)["camera"] == 0  # not created either
    add_grid(client, "g-1")
    assert client.put("/api/v1/cameras/cam-z", json={"grid_id": "g-1"}).status_code == 200


def test_unknown_fields_are_refused_not_ignored(client):
    worker = add_worker(client, "W")
    resp = client.patch(f"/api/v1/workers/{worker}", json={"id": 99, "name": "V"})
    assert resp.status_code == 422 and ["body", "id"] in _locs(resp), resp.text
    assert client.get("/api/v1/workers").json()[0]["name"] == "W"  # nothing changed
    for path, body in (("/api/v1/workers", {"name": "X", "grid": "g"}), ("/api/v1/grids", {"id": "g", "cams": []})):
        assert client.post(path, json=body).status_code == 422, path
    assert client.put("/api/v1/cameras/cam-1", json={"lat": 31.2, "lon": 121.4, "gird_id": "g"}).status_code == 422
