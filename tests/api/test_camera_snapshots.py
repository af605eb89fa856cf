"""Each camera's snapshot: only its box uploads it, reviewers read it, one object per camera
(overwritten), and a refused upload changes nothing. Both backends: SQLite + a folder, and
PostgreSQL + the real S3 server."""

from __future__ import annotations

from datetime import datetime
from email.utils import parsedate_to_datetime

from fastapi.testclient import TestClient

from api.main import create_app
from tests.api.factories import add_worker, auth, jpeg, make_key, stored_objects
from tests.api.fleet_helpers import beat, box_key, camera

def _put(client: TestClient, name: str, key: str, body: bytes, content_type: str = "image/jpeg"):
    return client.put(f"/api/v1/cameras/{name}/snapshot", content=body,
                      headers={**auth(key), "Content-Type": content_type})


def _snapshot_objects(settings) -> list[str]:
    return [k for k in stored_objects(settings) if k.startswith("cameras/")]


def test_a_box_uploads_its_cameras_snapshot_and_reviewers_read_it(client, backend):
    a = box_key(backend, "box-a")
    beat(client, "box-a", a, camera("cam-1"), camera("cam-2"))
    missing = client.get("/api/v1/cameras/cam-1/snapshot")
    assert missing.status_code == 404 and "no snapshot yet" in missing.json()["detail"]
    assert client.get("/api/v1/cameras?box_id=box-a").json()[0]["snapshot_at"] is None

    first = jpeg((200, 60, 40), (640, 360))
    resp = _put(client, "cam-1", a, first)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["camera"], body["box_id"], body["width"], body["height"], body["size"]) == \
        ("cam-1", "box-a", 640, 360, len(first))

    reviewer = auth(make_key(backend, "reviewer"))
    got = client.get("/api/v1/cameras/cam-1/snapshot", headers=reviewer)
    assert got.status_code == 200 and got.content == first and got.headers["content-type"] == "image/jpeg"
    assert got.headers["etag"] == f'"{body["sha256"]}"'
    uploaded = datetime.fromisoformat(body["uploaded_at"])
    assert abs(parsedate_to_datetime(got.headers["last-modified"]).timestamp() - uploaded.timestamp()) < 1
    same = client.get("/api/v1/cameras/cam-1/snapshot", headers={**reviewer, "If-None-Match": got.headers["etag"]})
    assert same.status_code == 304 and same.content == b""
    listed = {c["name"]: c for c in client.get("/api/v1/cameras", headers=reviewer).json()}
    assert listed["cam-1"]["snapshot_at"] is not None and listed["cam-2"]["snapshot_at"] is None

    # Overwritten: still one object for the camera, and the new picture is served.
    second = jpeg((40, 200, 60), (640, 360))
    assert _put(client, "cam-1", a, second).status_code == 200
    newer = client.get("/api/v1/cameras/cam-1/snapshot", headers={**reviewer, "If-None-Match": got.headers["etag"]})
    assert newer.status_code == 200 and newer.content == second and newer.headers["etag"] != got.headers["etag"]
    assert len(_snapshot_objects(backend)) == 1
    assert _put(client, "cam-2", a, first).status_code == 200
    assert len(_snapshot_objects(backend)) == 2


def test_who_may_upload_and_read(client, backend):
    a, b = box_key(backend, "box-a"), box_key(backend, "box-b")
    beat(client, "box-a", a, camera("cam-1"))
    beat(client, "box-b", b, camera("cam-9"))
    picture = jpeg()

    other = _put(client, "cam-1", b, picture)  # box B's key, box A's camera
    assert other.status_code == 403 and "belongs to box 'box-a'" in other.json()["detail"]
    undeclared = _put(client, "cam-new", b, picture)
    assert undeclared.status_code == 403
    assert _put(client, "cam-1", make_key(backend, "reviewer"), picture).status_code == 403
    worker = make_key(backend, "worker", add_worker(client, "W"))
    assert _put(client, "cam-1", worker, picture).status_code == 403
    assert _put(client, "cam-1", "no-such-key", picture).status_code == 401
    assert _snapshot_objects(backend) == []

    assert _put(client, "cam-1", a, picture).status_code == 200
    assert client.get("/api/v1/cameras/cam-1/snapshot", headers=auth(b)).status_code == 403  # edge: not a reader
    assert client.get("/api/v1/cameras/cam-1/snapshot", headers=auth("no-such-key")).status_code == 401
    assert client.get("/api/v1/cameras/nope/snapshot").status_code == 404


def test_bad_bodies_are_refused_and_the_previous_snapshot_stays(client, backend):
    a = box_key(backend, "box-a")
    beat(client, "box-a", a, camera("cam-1"))
    good = jpeg((200, 60, 40), (640, 360))
    assert _put(client, "cam-1", a, good).status_code == 200
    before = client.get("/api/v1/cameras/cam-1/snapshot").headers["last-modified"]

    as_png = _put(client, "cam-1", a, jpeg(fmt="PNG"), "image/png")
    assert as_png.status_code == 415 and "image/jpeg" in as_png.json()["detail"]
    png_as_jpeg = _put(client, "cam-1", a, jpeg(fmt="PNG"))
    assert png_as_jpeg.status_code == 415 and "must be a JPEG" in png_as_jpeg.json()["detail"]
    for junk in (b"", b"not an image at all", good[: len(good) // 2]):
        resp = _put(client, "cam-1", a, junk)
        assert resp.status_code == 422, resp.text
        assert resp.json()["detail"][0]["loc"] == ["body"], resp.json()
    assert _put(client, "cam-1", a, good, "application/octet-stream").status_code == 415

    got = client.get("/api/v1/cameras/cam-1/snapshot")
    assert got.content == good and got.headers["last-modified"] == before
    assert len(_snapshot_objects(backend)) == 1


def test_an_upload_over_the_size_limit_is_413(backend):
    limited = backend.model_copy(update={"max_upload_bytes": 20_000})
    with TestClient(create_app(limited), headers=auth(make_key(limited, "admin"))) as client:
        a = box_key(limited, "box-a")
        beat(client, "box-a", a, camera("cam-1"))
        big = jpeg((200, 60, 40), (1920, 1080))
        assert len(big) > 20_000
        resp = _put(client, "cam-1", a, big)
        assert resp.status_code == 413 and "20000" in resp.json()["detail"]
        assert client.get("/api/v1/cameras/cam-1/snapshot").status_code == 404
        assert _snapshot_objects(limited) == []
