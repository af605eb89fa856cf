"""POST /api/v1/events/batch: many events in one request, each ingested (and refused) on its
own, on both backends."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.box_binding import forget_owners
from api.main import create_app
from tests.api.factories import auth, counts, event_json, jpeg, make_key, stored_objects
from tests.api.fleet_helpers import beat, box_key, camera, unbound_edge_key


@pytest.fixture(autouse=True)
def _fresh_owner_cache():
    forget_owners()
    yield
    forget_owners()


def post_batch(client: TestClient, events: list[Any], images: dict[str, bytes] | None = None,
               headers: dict[str, str] | None = None):
    """Every event gets a frame.N unless `images` names its parts itself."""
    if images is None:
        images = {f"frame.{i}": jpeg() for i in range(len(events))}
    files = [(name, (f"{name}.jpg", data, "image/jpeg")) for name, data in images.items()]
    return client.post("/api/v1/events/batch", data={"events": json.dumps(events)}, files=files,
                       headers=headers or {})


def order_event_ids(client: TestClient) -> set[str]:
    out: set[str] = set()
    for order in client.get("/api/v1/orders", params={"limit": 500}).json()["data"]:
        out |= {e["event_id"] for e in client.get(f"/api/v1/orders/{order['id']}").json()["events"]}
    return out


def test_a_mixed_batch_stores_the_good_events_and_names_each_bad_ones_reason(client, backend):
    good = [event_json(camera="cam-1"), event_json(camera="cam-2")]
    bad_json = event_json(camera="cam-3", confidence=7)
    bad_clock = event_json(camera="cam-4", confirmed_at="1999-01-01T00:00:00Z", first_seen="1999-01-01T00:00:00Z")
    no_frame = event_json(camera="cam-5")
    bad_image = event_json(camera="cam-6")
    events = [good[0], bad_json, bad_clock, no_frame, bad_image, good[1], "not an object"]
    images = {f"frame.{i}": jpeg() for i in (0, 1, 2, 5, 6)}
    images["frame.4"] = jpeg()[:-200]  # cut short
    images["annotated.0"] = jpeg((10, 10, 200))
    resp = post_batch(client, events, images)
    assert resp.status_code == 200, resp.text
    results = resp.json()["results"]
    assert [r["index"] for r in results] == list(range(7))
    assert [r["status"] for r in results] == [201, 422, 422, 422, 422, 201, 422]
    assert results[0]["new_order"] is True and results[0]["replay"] is False and results[0]["order_id"]
    assert results[1]["detail"][0]["loc"] == ["body", "events", 1, "confidence"]
    assert results[2]["detail"][0]["loc"] == ["body", "events", 2, "first_seen"]
    assert "NTP" in results[2]["detail"][0]["msg"]
    assert results[3]["detail"][0]["loc"] == ["body", "frame.3"] and "required" in results[3]["detail"][0]["msg"]
    assert results[4]["detail"][0]["loc"] == ["body", "frame.4"]
    assert results[6]["event_id"] is None and results[6]["detail"][0]["loc"] == ["body", "events", 6]
    assert results[1]["event_id"] == bad_json["event_id"]
    assert order_event_ids(client) == {good[0]["event_id"], good[1]["event_id"]}
    detail = client.get(f"/api/v1/orders/{results[0]['order_id']}").json()
    assert {e["kind"] for e in detail["evidence"]} == {"frame", "annotated"}
    assert counts(backend)["evidence"] == 3  # two frames and one annotated: nothing of the refused ones


def test_replaying_a_batch_answers_each_event_as_a_replay_and_stores_nothing(client, backend):
    events = [event_json(camera="cam-1"), event_json(camera="cam-1", bbox=(110, 105, 210, 205)),
              event_json(camera="cam-2")]
    first = post_batch(client, events).json()["results"]
    assert [r["status"] for r in first] == [201, 201, 201]
    assert [r["new_order"] for r in first] == [True, False, True]  # the second joins the first's order
    before, objects = counts(backend), stored_objects(backend)
    again = post_batch(client, events).json()["results"]
    assert [r["status"] for r in again] == [200, 200, 200]
    assert again == [{**r, "status": 200, "replay": True} for r in first]
    assert counts(backend) == before and stored_objects(backend) == objects
    # ... and the single route knows them too (one idempotency key for both paths).
    from tests.api.factories import post
    single = post(client, events[2])
    assert single.status_code == 200 and single.json()["replay"] is True
    # An event sent twice in one batch is stored once.
    twin = event_json(camera="cam-3")
    results = post_batch(client, [twin, twin]).json()["results"]
    assert [r["status"] for r in results] == [201, 200] and results[1]["order_id"] == results[0]["order_id"]


def test_batch_limits_answer_413_and_422_and_store_nothing(backend):
    settings = backend.model_copy(update={"batch_max_events": 3, "batch_max_bytes": 200_000})
    with TestClient(create_app(settings), headers=auth(make_key(settings, "admin"))) as client:
        resp = post_batch(client, [event_json(camera=f"cam-{i}") for i in range(4)])
        assert resp.status_code == 422
        assert resp.json()["detail"][0]["loc"] == ["body", "events"] and "at most 3" in resp.json()["detail"][0]["msg"]
        big = jpeg(size=(1600, 1200))
        big = big + b"\0" * (210_000 - len(big))
        resp = post_batch(client, [event_json()], {"frame.0": big})
        assert resp.status_code == 413 and "200000" in resp.json()["detail"]
        assert counts(settings)["event"] == 0 and stored_objects(settings) == []


@pytest.mark.parametrize("events, images, loc", [
    ("not json", None, ["body", "events"]),
    ({"an": "object"}, None, ["body", "events"]),
    ([], {}, ["body", "events"]),
    (None, {"frame.0": b"x"}, ["body", "events"]),  # no events part at all
    ([1], {"frame.0": b"x", "frame.1": b"x"}, ["body", "frame.1"]),  # a part of no event
    ([1], {"frame.0": b"x", "fram.0": b"x"}, ["body", "fram.0"]),
], ids=["not-json", "object", "empty", "missing", "no-such-event", "misspelled"])
def test_a_malformed_batch_is_refused_whole_naming_the_part(sqlite_client, events, images, loc):
    files = [(name, (f"{name}.jpg", data, "image/jpeg")) for name, data in (images or {"frame.0": b"x"}).items()]
    data = {} if events is None else {"events": events if isinstance(events, str) else json.dumps(events)}
    resp = sqlite_client.post("/api/v1/events/batch", data=data, files=files)
    assert resp.status_code == 422, resp.text
    assert resp.json()["detail"][0]["loc"] == loc


def test_a_part_sent_twice_is_refused(sqlite_client):
    files = [("frame.0", ("a.jpg", jpeg(), "image/jpeg")), ("frame.0", ("b.jpg", jpeg(), "image/jpeg"))]
    resp = sqlite_client.post("/api/v1/events/batch", data={"events": json.dumps([event_json()])}, files=files)
    assert resp.status_code == 422 and "more than once" in resp.json()["detail"][0]["msg"]


def test_roles_and_box_binding_as_on_the_single_route(client, backend):
    a, b = box_key(backend, "box-a"), box_key(backend, "box-b")
    beat(client, "box-a", a, camera("cam-1"))
    beat(client, "box-b", b, camera("cam-2"))
    events = [event_json(camera="cam-1"), event_json(camera="cam-2"), event_json(camera="cam-3")]
    results = post_batch(client, events, headers=auth(a)).json()["results"]
    assert [r["status"] for r in results] == [201, 403, 403]
    assert "cam-2" in results[1]["detail"] and "box-b" in results[1]["detail"]
    assert "not a camera of box 'box-a'" in results[2]["detail"]
    # A key without a box speaks for cameras no box holds only.
    results = post_batch(client, [event_json(camera="cam-1"), event_json(camera="cam-7")],
                         headers=auth(unbound_edge_key(backend))).json()["results"]
    assert [r["status"] for r in results] == [403, 201]
    assert order_event_ids(client) == {events[0]["event_id"], results[1]["event_id"]}
    assert post_batch(client, [event_json()], headers=auth(make_key(backend, "reviewer"))).status_code == 403
    resp = client.post("/api/v1/events/batch", data={"events": "[]"}, headers={"Authorization": "Bearer nope"})
    assert resp.status_code == 401


def test_store_unavailable_halts_the_rest_of_the_batch_with_503(sqlite_backend, monkeypatch):
    from api.evidence_store import StoreUnavailable
    app = create_app(sqlite_backend)
    store = app.state.store
    real_put, calls = store.put, []

    def flaky_put(key, data, content_type, sha256=None):
        calls.append(key)
        if len(calls) == 2:
            raise StoreUnavailable("down")
        return real_put(key, data, content_type, sha256)

    monkeypatch.setattr(store, "put", flaky_put)
    with TestClient(app, headers=auth(make_key(sqlite_backend, "admin"))) as client:
        events = [event_json(camera=f"cam-{i}") for i in range(4)]
        results = post_batch(client, events).json()["results"]
        assert [r["status"] for r in results] == [201, 503, 503, 503]
        assert "not tried" in results[2]["detail"] and results[3]["event_id"] == events[3]["event_id"]
        assert len(calls) == 2 and order_event_ids(client) == {events[0]["event_id"]}
        # Sent again, the first is a replay and the rest are stored.
        assert [r["status"] for r in post_batch(client, events).json()["results"]] == [200, 201, 201, 201]


def test_images_over_the_part_limit_are_413_for_that_event_alone(backend):
    settings = backend.model_copy(update={"max_upload_bytes": 20_000})
    with TestClient(create_app(settings), headers=auth(make_key(settings, "admin"))) as client:
        big = jpeg(size=(320, 240)) + b"\0" * 25_000
        results = post_batch(client, [event_json(camera="cam-1"), event_json(camera="cam-2")],
                             {"frame.0": jpeg(), "frame.1": jpeg(), "crop.1": big}).json()["results"]
        assert [r["status"] for r in results] == [201, 413]
        assert "crop.1" in results[1]["detail"]
        assert len(order_event_ids(client)) == 1 and uuid.UUID(results[0]["event_id"])
