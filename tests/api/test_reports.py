"""Citizen reports, camera verification of fixes, and tamper-evident evidence."""

from __future__ import annotations

import re

import pytest

from api.evidence_store import make_store
from api.models import OrderState, utcnow
from api.reports import STATUS_NOTES, TRACKING_PATTERN
from tests.api.factories import (add_worker, auth, counts, event_json, jpeg, make_key, nothing_stored, order_row,
                                 post, set_order)


def _report(client, photo: bytes | None = None, **fields):
    data = {"issue_type": "clutter", "lat": 31.2, "lon": 121.4, "text": "sofa on the pavement", **fields}
    return client.post("/api/v1/reports", data=data, files={"photo": ("p.jpg", photo or jpeg(), "image/jpeg")},
                       headers={"Authorization": ""})


def test_report_needs_no_key_and_its_tracking_id_shows_progress(client, backend):
    resp = _report(client, contact="138 0000 0000")
    assert resp.status_code == 201, resp.text
    tracking = resp.json()["tracking_id"]
    assert re.match(TRACKING_PATTERN, tracking)
    progress = client.get(f"/api/v1/reports/{tracking}", headers={"Authorization": ""}).json()
    assert progress["state"] == "reported" and [s["state"] for s in progress["steps"]] == ["reported"]
    assert "contact" not in progress and "worker_id" not in progress

    order_id = client.get("/api/v1/orders").json()["data"][0]["id"]
    worker = add_worker(client, "W", on_duty=False)
    client.post(f"/api/v1/orders/{order_id}/dispatch", json={"worker_id": worker})
    set_order(backend, order_id, state=OrderState.in_progress)
    client.post(f"/api/v1/orders/{order_id}/resolve", data={"note": "sofa collected by Li Wei, 139 1234 5678"})
    progress = client.get(f"/api/v1/reports/{tracking}").json()
    assert progress["state"] == "resolved" and progress["status_note"] == STATUS_NOTES[OrderState.resolved]
    assert [s["state"] for s in progress["steps"]] == ["reported", "dispatched", "resolved"]
    # The worker's free text (a name, a phone number) is not for the public: fixed texts only.
    assert "Li Wei" not in str(progress) and "resolution_note" not in progress


@pytest.mark.parametrize("fields,photo,where", [
    ({"issue_type": "graffiti"}, None, "issue_type"),
    ({"lat": 91}, None, "lat"),
    ({"lon": -181}, None, "lon"),
    ({}, b"\x89PNG\r\n\x1a\n broken", "photo"),
])
def test_bad_reports_are_422_naming_the_field_and_store_nothing(client, backend, fields, photo, where):
    resp = _report(client, photo, **fields)
    assert resp.status_code == 422, resp.text
    assert where in [str(part) for e in resp.json()["detail"] for part in e["loc"]], resp.json()
    assert nothing_stored(backend)


def test_tracking_ids_are_checked(client):
    assert client.get("/api/v1/reports/SW-0000000000").status_code == 404
    for bad in ("123", "SW-ILOU000000", "sw-0000000000", "SW-00000000000"):
        assert client.get(f"/api/v1/reports/{bad}").status_code == 422, bad


def test_camera_verification_absent_marks_verified_with_before_and_after(client, backend):
    edge = auth(make_key(backend, "edge"))
    order_id = post(client, event_json(), annotated=jpeg((1, 2, 3))).json()["order_id"]
    assert client.get("/api/v1/verifications", params={"camera": "cam-1"}, headers=edge).json() == []
    set_order(backend, order_id, state=OrderState.resolved, resolved_at=utcnow())
    (pending,) = client.get("/api/v1/verifications", params={"camera": "cam-1"}, headers=edge).json()
    assert pending["order_id"] == order_id and pending["bbox"] == [100, 100, 200, 200] and pending["clear_seconds"] > 0

    after = jpeg((9, 9, 9))
    resp = client.post(f"/api/v1/verifications/{order_id}", data={"result": "absent"},
                       files={"frame": ("f.jpg", after, "image/jpeg")}, headers=edge)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"order_id": order_id, "state": "resolved", "verified": True}
    detail = client.get(f"/api/v1/orders/{order_id}").json()
    kinds = [e["kind"] for e in detail["evidence"]]
    assert "before" in kinds and "after" in kinds and detail["verified_at"]
    assert client.get("/api/v1/verifications", params={"camera": "cam-1"}, headers=edge).json() == []
    again = client.post(f"/api/v1/verifications/{order_id}", data={"result": "absent"},
                        files={"frame": ("f.jpg", after, "image/jpeg")}, headers=edge)
    assert again.status_code == 409
    reviewer = auth(make_key(backend, "reviewer"))
    assert client.get("/api/v1/verifications", params={"camera": "cam-1"}, headers=reviewer).status_code == 403


def test_camera_verification_present_reopens_and_tells_the_worker(client, backend):
    edge = auth(make_key(backend, "edge"))
    worker = add_worker(client, "W", on_duty=False)
    order_id = post(client, event_json()).json()["order_id"]
    set_order(backend, order_id, state=OrderState.resolved, resolved_at=utcnow(), worker_id=worker)
    resp = client.post(f"/api/v1/verifications/{order_id}", data={"result": "present"},
                       files={"frame": ("f.jpg", jpeg(), "image/jpeg")}, headers=edge)
    assert resp.json()["state"] == "reopened"
    assert order_row(backend, order_id).state == OrderState.reopened
    notes = client.get("/api/v1/notifications").json()
    assert [(n["kind"], n["worker_id"]) for n in notes] == [("reopened", worker)]
    bad = client.post(f"/api/v1/verifications/{order_id}", data={"result": "maybe"},
                      files={"frame": ("f.jpg", jpeg(), "image/jpeg")}, headers=edge)
    assert bad.status_code == 422


@pytest.mark.parametrize("damage", ["deleted", "not an image"])
def test_a_camera_check_counts_when_the_stored_frame_is_lost(client, backend, damage):
    """The "before" copy comes from the stored frame; if that object is gone or damaged the
    check is still recorded, with the new frame only (it was a 500)."""
    edge = auth(make_key(backend, "edge"))
    order_id = post(client, event_json(), annotated=jpeg((1, 2, 3))).json()["order_id"]
    set_order(backend, order_id, state=OrderState.resolved, resolved_at=utcnow())
    store = make_store(backend)
    for ev in client.get(f"/api/v1/orders/{order_id}").json()["evidence"]:
        if damage == "deleted":
            store.delete(ev["object_key"])
        else:
            store.put(ev["object_key"], b"bit rot", "image/jpeg")
    resp = client.post(f"/api/v1/verifications/{order_id}", data={"result": "absent"},
                       files={"frame": ("f.jpg", jpeg((9, 9, 9)), "image/jpeg")}, headers=edge)
    assert resp.status_code == 200, resp.text
    detail = client.get(f"/api/v1/orders/{order_id}").json()
    assert detail["verified_at"] and [e["kind"] for e in detail["evidence"]].count("after") == 1
    assert "before" not in [e["kind"] for e in detail["evidence"]]


def test_evidence_verify_finds_changed_and_missing_objects(client, backend):
    order_id = post(client, event_json(), annotated=jpeg((5, 5, 5)), crop=jpeg(size=(32, 32))).json()["order_id"]
    clean = client.get(f"/api/v1/orders/{order_id}/evidence/verify").json()
    assert clean == {"order_id": order_id, "checked": 3, "ok": True, "problems": []}
    evidence = {e["kind"]: e for e in client.get(f"/api/v1/orders/{order_id}").json()["evidence"]}
    store = make_store(backend)
    store.put(evidence["annotated"]["object_key"], jpeg((6, 6, 6)), "image/jpeg")  # tampered
    store.delete(evidence["crop"]["object_key"])
    report = client.get(f"/api/v1/orders/{order_id}/evidence/verify").json()
    assert report["ok"] is False and report["checked"] == 3
    assert {(p["object_key"], p["status"]) for p in report["problems"]} == {
        (evidence["annotated"]["object_key"], "mismatch"), (evidence["crop"]["object_key"], "missing")}
    assert counts(backend)["evidence"] == 3  # verifying changes nothing


def test_citizen_reports_are_rate_limited_per_address(sqlite_backend):
    from fastapi.testclient import TestClient

    from api.main import create_app

    limited = sqlite_backend.model_copy(update={"report_rate_per_minute": 2})
    with TestClient(create_app(limited)) as c:
        assert [_report(c).status_code for _ in range(2)] == [201, 201]
        refused = _report(c)
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
        assert c.get("/api/v1/reports/SW-0000000000").status_code == 404  # reading is not limited


def test_rate_limiter_refills():
    from api.rate_limit import RateLimiter

    limiter = RateLimiter(per_minute=60, burst=2)
    assert [limiter.take("a", now=0) for _ in range(3)] == [0, 0, 1.0]
    assert limiter.take("b", now=0) == 0  # per client
    assert limiter.take("a", now=1.0) == 0  # one token back after a second


def test_cors_origins_come_from_settings(sqlite_backend):
    from fastapi.testclient import TestClient

    from api.main import create_app

    preflight = {"Origin": "https://dash.example.cn", "Access-Control-Request-Method": "GET"}
    with TestClient(create_app(sqlite_backend)) as c:
        assert "access-control-allow-origin" not in c.options("/api/v1/orders", headers=preflight).headers
    allowed = sqlite_backend.model_copy(update={"cors_origins": ["https://dash.example.cn"]})
    with TestClient(create_app(allowed)) as c:
        resp = c.options("/api/v1/orders", headers=preflight)
        assert resp.headers["access-control-allow-origin"] == "https://dash.example.cn"
        other = c.options("/api/v1/orders", headers={**preflight, "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
