"""POST /api/v1/events and reading the orders it makes, on both backends."""

from __future__ import annotations

import hashlib
import json
import uuid

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from api.db import get_engine
from api.main import create_app
from api.models import Order, OrderState
from api.settings import Settings
from tests.api.factories import auth, make_key, counts, event_json, jpeg, nothing_stored, post, stored_objects


def download(client: TestClient, url: str) -> bytes:
    # S3 presigned URLs are absolute (fetched from S3 itself); local ones are API paths.
    resp = httpx.get(url, timeout=10) if url.startswith("http") else client.get(url)
    assert resp.status_code == 200, resp.text
    return resp.content


def error_locs(resp: httpx.Response) -> list[list]:
    return [e["loc"] for e in resp.json()["detail"]]


def test_event_creates_order_with_downloadable_evidence(client, backend):
    frame, annotated, crop = jpeg((10, 200, 10)), jpeg((200, 10, 10)), jpeg(size=(64, 64))
    resp = post(client, event_json(), frame=frame, annotated=annotated, crop=crop)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["new_order"] is True and body["replay"] is False

    detail = client.get(f"/api/v1/orders/{body['order_id']}").json()
    assert detail["issue_type"] == "clutter" and detail["state"] == "reported" and detail["camera"] == "cam-1"
    assert detail["bbox"] == [100, 100, 200, 200] and detail["event_count"] == 1
    assert [e["event_id"] for e in detail["events"]] == [body["event_id"]]
    by_kind = {e["kind"]: e for e in detail["evidence"]}
    assert set(by_kind) == {"frame", "annotated", "crop"}
    for kind, sent in (("frame", frame), ("annotated", annotated), ("crop", crop)):
        got = download(client, by_kind[kind]["url"])
        assert got == sent and hashlib.sha256(got).hexdigest() == by_kind[kind]["sha256"]
        assert by_kind[kind]["size"] == len(sent) and by_kind[kind]["content_type"] == "image/jpeg"
    assert (by_kind["crop"]["width"], by_kind["crop"]["height"]) == (64, 64)
    assert download(client, detail["snapshot_url"]) == annotated

    listing = client.get("/api/v1/orders").json()
    assert listing["count"] == 1 and listing["data"][0]["id"] == body["order_id"]
    assert download(client, listing["data"][0]["snapshot_url"]) == annotated


def test_png_evidence_is_accepted(client, backend):
    png = jpeg(fmt="PNG")
    body = post(client, event_json(), frame=png).json()
    (ev,) = client.get(f"/api/v1/orders/{body['order_id']}").json()["evidence"]
    assert ev["content_type"] == "image/png" and ev["object_key"].endswith(".png")
    assert download(client, ev["url"]) == png


def test_replay_returns_first_answer_and_stores_nothing(client, backend):
    ev = event_json()
    first = post(client, ev, annotated=jpeg())
    assert first.status_code == 201
    before, objects = counts(backend), stored_objects(backend)
    again = post(client, ev, headers={"Idempotency-Key": ev["event_id"]}, annotated=jpeg())
    assert again.status_code == 200
    assert again.json() == {**first.json(), "replay": True}
    assert counts(backend) == before and stored_objects(backend) == objects
    assert client.get(f"/api/v1/orders/{first.json()['order_id']}").json()["event_count"] == 1


def test_dedup_joins_overlapping_and_separates_the_rest(client, backend):
    a = post(client, event_json(bbox=(100, 100, 200, 200))).json()
    b = post(client, event_json(bbox=(110, 105, 210, 205))).json()  # IoU ≈ 0.75
    assert b["order_id"] == a["order_id"] and b["new_order"] is False and b["replay"] is False
    detail = client.get(f"/api/v1/orders/{a['order_id']}").json()
    assert detail["event_count"] == 2 and len(detail["events"]) == 2 and len(detail["evidence"]) == 2
    assert detail["bbox"] == [110, 105, 210, 205]  # the newest sighting

    far = post(client, event_json(bbox=(250, 10, 300, 60))).json()
    other_type = post(client, event_json(bbox=(100, 100, 200, 200), issue_type="flooding")).json()
    other_cam = post(client, event_json(bbox=(100, 100, 200, 200), camera="cam-2")).json()
    assert all(r["new_order"] for r in (far, other_type, other_cam))
    assert len({a["order_id"], far["order_id"], other_type["order_id"], other_cam["order_id"]}) == 4
    assert counts(backend)["order"] == 4 and counts(backend)["camera"] == 2


def test_dedup_threshold_and_best_overlap(client, backend):
    left = post(client, event_json(bbox=(0, 0, 100, 100))).json()
    right = post(client, event_json(bbox=(120, 0, 220, 100))).json()
    assert left["order_id"] != right["order_id"]
    # Overlaps both; more of the right one (IoU 0.54 vs 0.11) → joins the right order.
    joined = post(client, event_json(bbox=(80, 0, 200, 100))).json()
    assert joined["order_id"] == right["order_id"]
    # IoU with the left box is 0.25 < 0.3 → a new order.
    assert post(client, event_json(bbox=(0, 0, 100, 25))).json()["new_order"] is True


def test_closed_orders_are_not_joined(client, backend):
    """Seen again after its order was closed: a new order (a recurrence, see test_lifecycle)."""
    first = post(client, event_json()).json()
    with Session(get_engine(backend.database_url)) as s:
        order = s.get(Order, first["order_id"])
        order.state, order.closed_at = OrderState.closed, order.updated_at
        s.add(order)
        s.commit()
    again = post(client, event_json()).json()
    assert again["new_order"] is True and again["order_id"] != first["order_id"]


@pytest.mark.parametrize("part,data", [
    ("frame", b"\xff\xd8\xff\xe0 not really a jpeg"),
    ("frame", jpeg()[:300]),  # truncated
    ("frame", jpeg()[:-64]),  # truncated near the end: the check must read every byte
    ("frame", b""),
    ("frame", jpeg(fmt="GIF")),
    ("crop", b"garbage"),  # a good frame does not excuse a bad optional part
])
def test_bad_image_is_refused_naming_the_part_and_nothing_stored(client, backend, part, data):
    parts = {"frame": jpeg(), "annotated": jpeg(), part: data}
    resp = post(client, event_json(), **parts)
    assert resp.status_code == 422, resp.text
    assert ["body", part] in error_locs(resp)
    assert nothing_stored(backend)


def test_bad_event_json_is_refused_naming_the_field(client, backend):
    resp = post(client, event_json(issue_type="potholes"))
    assert resp.status_code == 422 and ["body", "event", "issue_type"] in error_locs(resp)
    resp = post(client, event_json(bbox=(100, 100, 500, 200)))  # outside a 320-wide frame
    assert resp.status_code == 422 and "bbox" in resp.text
    bad_lat = event_json()
    bad_lat["camera"]["lat"] = 123
    resp = post(client, bad_lat)
    assert resp.status_code == 422 and ["body", "event", "camera", "lat"] in error_locs(resp)
    resp = client.post("/api/v1/events", data={"event": "{not json"}, files={"frame": ("f.jpg", jpeg(), "image/jpeg")})
    assert resp.status_code == 422 and ["body", "event"] in error_locs(resp)
    resp = client.post("/api/v1/events", files={"frame": ("f.jpg", jpeg(), "image/jpeg")})
    assert resp.status_code == 422 and ["body", "event"] in error_locs(resp)
    assert nothing_stored(backend)


def test_missing_frame_is_422(client, backend):
    resp = client.post("/api/v1/events", data={"event": json.dumps(event_json())},
                       files={"annotated": ("a.jpg", jpeg(), "image/jpeg")})
    assert resp.status_code == 422 and ["body", "frame"] in error_locs(resp)
    assert nothing_stored(backend)


def test_idempotency_key_must_match_event_id(client, backend):
    resp = post(client, event_json(), headers={"Idempotency-Key": str(uuid.uuid4())})
    assert resp.status_code == 422 and ["header", "Idempotency-Key"] in error_locs(resp)
    assert nothing_stored(backend)


def test_oversize_upload_is_413(backend):
    small = backend.model_copy(update={"max_upload_bytes": 4000})
    big = jpeg(size=(640, 480))
    assert len(big) > 4000 > len(jpeg(size=(32, 32)))
    with TestClient(create_app(small), headers=auth(make_key(small, 'admin'))) as c:
        resp = post(c, event_json(), frame=jpeg(size=(32, 32)), crop=big)
        assert resp.status_code == 413 and "crop" in resp.json()["detail"]
        # A body far over every part's limit is refused before it is parsed, declared
        # (Content-Length) or streamed (chunked).
        resp = post(c, event_json(), frame=b"\xff" * 2_000_000)
        assert resp.status_code == 413 and "request body" in resp.text
        chunks = (b"--x\r\nContent-Disposition: form-data; name=\"frame\"; filename=\"f.jpg\"\r\n\r\n",
                  *[b"\xff" * 65536] * 40)
        resp = c.post("/api/v1/events", content=iter(chunks),
                      headers={"Content-Type": "multipart/form-data; boundary=x"})
        assert resp.status_code == 413 and "request body" in resp.text
    assert nothing_stored(backend)


def test_api_key_is_enforced_when_configured(backend):
    keyed = backend.model_copy(update={"api_key": "s3cret-edge-key"})
    with TestClient(create_app(keyed)) as c:
        assert post(c, event_json()).status_code == 401
        assert post(c, event_json(), headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert post(c, event_json(), headers={"X-API-Key": "s3cret"}).status_code == 401
        assert counts(backend)["event"] == 0
        assert post(c, event_json(), headers={"Authorization": "Bearer s3cret-edge-key"}).status_code == 201
        assert post(c, event_json(), headers={"X-API-Key": "s3cret-edge-key"}).status_code == 201
        # The edge key may post events, not read orders; a reviewer key may read, not post.
        assert c.get("/api/v1/orders", headers={"X-API-Key": "s3cret-edge-key"}).status_code == 403
        reviewer = auth(make_key(keyed, "reviewer"))
        assert c.get("/api/v1/orders", headers=reviewer).json()["data"][0]["event_count"] == 2
        assert post(c, event_json(), headers=reviewer).status_code == 403


def test_order_filters_and_paging(client, backend):
    ids = [post(client, event_json(bbox=(10 * i, 0, 10 * i + 5, 5), issue_type=t, camera=cam)).json()["order_id"]
           for i, (t, cam) in enumerate([("clutter", "cam-1"), ("flooding", "cam-1"), ("clutter", "cam-2"),
                                         ("street_vending", "cam-2")])]
    every = client.get("/api/v1/orders").json()
    assert [o["id"] for o in every["data"]] == ids[::-1] and every["count"] == 4  # newest first
    clutter = client.get("/api/v1/orders", params={"issue_type": "clutter"}).json()
    assert {o["id"] for o in clutter["data"]} == {ids[0], ids[2]}
    cam2 = client.get("/api/v1/orders", params={"camera": "cam-2"}).json()
    assert {o["id"] for o in cam2["data"]} == {ids[2], ids[3]}
    page = client.get("/api/v1/orders", params={"limit": 2, "offset": 1}).json()
    assert [o["id"] for o in page["data"]] == [ids[2], ids[1]] and page["count"] == 4
    assert client.get("/api/v1/orders", params={"state": "resolved"}).json() == {"data": [], "count": 0, "next_cursor": None}
    assert client.get("/api/v1/orders", params={"state": "open-ish"}).status_code == 422
    assert client.get("/api/v1/orders", params={"limit": 0}).status_code == 422


def test_unknown_order_is_404(client):
    resp = client.get("/api/v1/orders/999")
    assert resp.status_code == 404 and "999" in resp.json()["detail"]


def test_healthz(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok", "database": "ok", "evidence_store": "ok"}


def test_settings_backend_is_what_it_says(backend: Settings):
    # Guards the parametrisation itself: the PostgreSQL run must really use S3.
    assert backend.database_url.startswith("sqlite") == (backend.s3_endpoint is None)
