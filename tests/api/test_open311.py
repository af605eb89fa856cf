"""Open311 GeoReport v2 read endpoints: field names and status mapping as the spec has them."""

from __future__ import annotations

from api.models import OrderState
from tests.api.factories import add_grid, event_json, jpeg, post, set_order

REQUEST_FIELDS = {"service_request_id", "status", "status_notes", "service_name", "service_code", "description",
                  "agency_responsible", "service_notice", "requested_datetime", "updated_datetime",
                  "expected_datetime", "address", "address_id", "zipcode", "lat", "long", "media_url"}


def test_services_and_requests(client, backend):
    public = {"Authorization": ""}
    services = client.get("/open311/v2/services.json", headers=public).json()
    assert {s["service_code"] for s in services} == {"street_vending", "clutter", "flooding"}
    assert all({"service_name", "description", "metadata", "type", "keywords", "group"} <= set(s) for s in services)

    a = post(client, event_json(issue_type="flooding"), annotated=jpeg()).json()["order_id"]
    b = post(client, event_json(issue_type="clutter", camera="cam-2")).json()["order_id"]
    set_order(backend, b, state=OrderState.closed)
    everything = client.get("/open311/v2/requests.json", headers=public).json()
    assert [r["service_request_id"] for r in everything] == [str(b), str(a)]
    assert all(set(r) == REQUEST_FIELDS for r in everything)
    flood = everything[1]
    assert flood["status"] == "open" and flood["service_code"] == "flooding" and flood["media_url"]
    assert flood["requested_datetime"].endswith("Z") and flood["expected_datetime"] and flood["lat"] is not None
    assert everything[0]["status"] == "closed" and everything[0]["expected_datetime"] is None

    assert [r["service_request_id"] for r in client.get("/open311/v2/requests.json",
                                                         params={"status": "closed"}).json()] == [str(b)]
    assert [r["service_request_id"] for r in client.get("/open311/v2/requests.json",
                                                         params={"service_code": "flooding"}).json()] == [str(a)]
    assert client.get("/open311/v2/requests.json", params={"start_date": "2999-01-01T00:00:00Z"}).json() == []
    (one,) = client.get(f"/open311/v2/requests/{a}.json").json()
    assert one["service_request_id"] == str(a)

    missing = client.get("/open311/v2/requests/999.json")
    assert missing.status_code == 404 and missing.json()[0]["code"] == 404
    for params in ({"status": "pending"}, {"service_code": "graffiti"}, {"service_request_id": "1,x"}):
        bad = client.get("/open311/v2/requests.json", params=params)
        assert bad.status_code == 400 and bad.json()[0]["description"], params
    assert client.get("/open311/v2/requests/abc.json").status_code == 400


def test_public_status_notes_name_no_one_and_carry_no_free_text(client, backend):
    """The audit log's notes name the worker ("dispatched: to Alice Wang") and carry reviewers'
    free text; Open311 needs no key, so it says only what state an order is in."""
    add_grid(client, "g-1", supervisor="Supervisor Zhang")
    worker = client.post("/api/v1/workers", json={"name": "Alice Wang", "grid_ids": ["g-1"], "on_duty": True})
    assert worker.status_code == 201, worker.text
    sent = post(client, event_json(issue_type="flooding")).json()["order_id"]
    wrong = post(client, event_json(issue_type="clutter", camera="cam-2")).json()["order_id"]
    assert client.post(f"/api/v1/orders/{wrong}/reject",
                       json={"reason": "other", "note": "call the resident at 13800138000"}).status_code == 200
    text = client.get("/open311/v2/requests.json", headers={"Authorization": ""}).text
    assert "Alice" not in text and "13800138000" not in text
    notes = {r["service_request_id"]: r["status_notes"]
             for r in client.get("/open311/v2/requests.json", headers={"Authorization": ""}).json()}
    assert notes == {str(sent): "dispatched to the grid's worker", str(wrong): "rejected (other)"}


def test_ids_override_the_other_filters_and_a_resident_finds_a_report_by_its_tracking_id(client, backend):
    public = {"Authorization": ""}
    order = post(client, event_json(issue_type="flooding")).json()["order_id"]
    by_id = client.get("/open311/v2/requests.json", headers=public,
                       params={"service_request_id": str(order), "status": "closed", "service_code": "clutter"})
    assert [r["service_request_id"] for r in by_id.json()] == [str(order)]  # the spec: other filters ignored

    report = client.post("/api/v1/reports", headers=public, files={"photo": ("p.jpg", jpeg(), "image/jpeg")},
                         data={"issue_type": "clutter", "lat": 31.5, "lon": 121.9, "text": "bags"}).json()
    tracking = report["tracking_id"]  # all a resident has
    (mine,) = client.get(f"/open311/v2/requests/{tracking}.json", headers=public).json()
    assert mine["service_code"] == "clutter"
    listed = client.get("/open311/v2/requests.json", headers=public,
                        params={"service_request_id": f"{tracking.lower()},{order}"}).json()
    assert sorted(r["service_request_id"] for r in listed) == sorted([mine["service_request_id"], str(order)])
    for bad in ("SW-0000000000", "²"):  # a tracking id nobody has; a digit int() refuses
        resp = client.get(f"/open311/v2/requests/{bad}.json", headers=public)
        assert resp.status_code == (404 if bad.startswith("SW") else 400), (bad, resp.text)
