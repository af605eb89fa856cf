from __future__ import annotations

import hashlib
import uuid

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from api.db import DatabaseNotMigrated, get_engine
from api.geometry import iou
from api.main import create_app
from api.models import Event, Evidence, Order
from api.settings import Settings
from tests.api.conftest import event_json, jpeg, post


def counts(settings: Settings) -> tuple[int, int, int]:
    with Session(get_engine(settings.database_url)) as s:
        return tuple(s.exec(select(func.count()).select_from(t)).one() for t in (Order, Event, Evidence))


def download(client: TestClient, url: str) -> bytes:
    resp = httpx.get(url, timeout=10) if url.startswith("http") else client.get(url)
    assert resp.status_code == 200, resp.text
    return resp.content


def test_iou():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(1 / 3)
    assert iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0


def test_event_creates_order_with_downloadable_evidence(client, backend):
    frame, annotated = jpeg((10, 200, 10)), jpeg((200, 10, 10))
    resp = post(client, event_json(), frame=frame, annotated=annotated, crop=jpeg(size=(64, 64)))
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["new_order"] is True and body["replay"] is False
    detail = client.get(f"/api/v1/orders/{body['order_id']}").json()
    assert detail["issue_type"] == "clutter" and detail["state"] == "reported" and detail["camera"] == "cam-1"
    by_kind = {e["kind"]: e for e in detail["evidence"]}
    assert set(by_kind) == {"frame", "annotated", "crop"}
    got = download(client, by_kind["frame"]["url"])
    assert got == frame and hashlib.sha256(got).hexdigest() == by_kind["frame"]["sha256"]
    assert download(client, detail["snapshot_url"]) == annotated
    listing = client.get("/api/v1/orders").json()
    assert listing["count"] == 1 and listing["data"][0]["id"] == body["order_id"]


def test_replay_returns_first_answer_and_stores_nothing(client, backend):
    ev = event_json()
    first = post(client, ev)
    assert first.status_code == 201
    before = counts(backend)
    again = post(client, ev, headers={"Idempotency-Key": ev["event_id"]})
    assert again.status_code == 200
    assert again.json() == {**first.json(), "new_order": False, "replay": True}
    assert counts(backend) == before


def test_dedup_overlapping_same_camera_and_type_joins_order(client, backend):
    a = post(client, event_json(bbox=(100, 100, 200, 200))).json()
    b = post(client, event_json(bbox=(110, 105, 210, 205))).json()  # IoU ≈ 0.75
    assert b["order_id"] == a["order_id"] and b["new_order"] is False
    detail = client.get(f"/api/v1/orders/{a['order_id']}").json()
    assert detail["event_count"] == 2 and len(detail["events"]) == 2 and len(detail["evidence"]) == 2
    far = post(client, event_json(bbox=(250, 10, 300, 60))).json()
    other_type = post(client, event_json(bbox=(100, 100, 200, 200), issue_type="flooding")).json()
    other_cam = post(client, event_json(bbox=(100, 100, 200, 200), camera="cam-2")).json()
    assert len({a["order_id"], far["order_id"], other_type["order_id"], other_cam["order_id"]}) == 4
    assert counts(backend)[0] == 4


@pytest.mark.parametrize("frame,where", [(b"\xff\xd8\xff\xe0 not really a jpeg", "frame"),
                                         (jpeg()[:200], "frame"), (b"", "frame")])
def test_corrupt_image_is_refused_and_nothing_stored(client, backend, frame, where):
    resp = post(client, event_json(), frame=frame)
    assert resp.status_code == 422 and where in resp.text
    assert counts(backend) == (0, 0, 0)


def test_bad_event_json_is_refused_naming_the_field(client, backend):
    resp = post(client, event_json(issue_type="potholes"))
    assert resp.status_code == 422 and "issue_type" in resp.text
    resp = post(client, event_json(bbox=(100, 100, 500, 200)))  # outside a 320-wide frame
    assert resp.status_code == 422 and "bbox" in resp.text
    bad_lat = event_json()
    bad_lat["camera"]["lat"] = 123
    resp = post(client, bad_lat)
    assert resp.status_code == 422 and "lat" in resp.text
    ev = event_json()
    resp = post(client, ev, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert resp.status_code == 422 and "Idempotency-Key" in resp.text
    resp = client.post("/api/v1/events", data={"event": "{not json"}, files={"frame": ("f.jpg", jpeg(), "image/jpeg")})
    assert resp.status_code == 422
    resp = client.post("/api/v1/events", data={"event": __import__("json").dumps(event_json())})
    assert resp.status_code == 422 and "frame" in resp.text
    assert counts(backend) == (0, 0, 0)


def test_oversize_upload_is_413(backend):
    small = backend.model_copy(update={"max_upload_bytes": 1000})
    with TestClient(create_app(small)) as c:
        resp = post(c, event_json(), frame=jpeg(size=(640, 480)))
    assert resp.status_code == 413 and "frame" in resp.text
    assert counts(backend) == (0, 0, 0)


def test_api_key_is_enforced_when_configured(backend):
    keyed = backend.model_copy(update={"api_key": "s3cret"})
    with TestClient(create_app(keyed)) as c:
        assert post(c, event_json()).status_code == 401
        assert post(c, event_json(), headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert post(c, event_json(), headers={"Authorization": "Bearer s3cret"}).status_code == 201
        assert post(c, event_json(), headers={"X-API-Key": "s3cret"}).status_code == 201


def test_unknown_order_is_404(client):
    resp = client.get("/api/v1/orders/999")
    assert resp.status_code == 404 and "999" in resp.json()["detail"]


def test_healthz(client):
    body = client.get("/healthz").json()
    assert body == {"status": "ok", "database": "ok", "evidence_store": "ok"}


def test_unmigrated_database_is_refused(tmp_path):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'empty.db'}", evidence_dir=tmp_path / "e")
    with pytest.raises(DatabaseNotMigrated, match="streetwatch api migrate"):
        create_app(settings)
