"""Input found to give 500s or to be stored half-right (an audit of the API's edges), on both
backends: each is now a 4xx naming the field, with nothing stored."""

from __future__ import annotations

import base64
import json

import pytest

from tests.api.factories import add_grid, counts, event_json, jpeg, nothing_stored, post


def locs(resp) -> list[list]:
    return [e["loc"] for e in resp.json()["detail"]]


def test_nul_characters_are_refused_wherever_a_string_comes_in(client, backend):
    """PostgreSQL text cannot hold U+0000: the database refused it mid-ingest (a 500 on that
    backend, stored quietly on SQLite). Now every entry point answers 422 naming the spot."""
    ev = event_json(class_name="stall\x00")
    resp = post(client, ev)
    assert resp.status_code == 422 and ["body", "event", "class_name"] in locs(resp), resp.text
    ev = event_json()
    ev["model"]["version"] = "1\x00"
    assert ["body", "event", "model", "version"] in locs(post(client, ev))
    assert nothing_stored(backend)

    resp = client.get("/api/v1/orders", params={"camera": "a\x00"})
    assert resp.status_code == 422 and locs(resp) == [["query", "camera"]]
    resp = client.post("/api/v1/workers", json={"name": "Li", "grid_ids": ["g-1", "g\x002"]})
    assert resp.status_code == 422 and locs(resp) == [["body", "grid_ids", 1]]
    for content_type in ("application/merge-patch+json", "application/json; charset=utf-8", None):
        resp = client.post("/api/v1/workers", content=b'{"name": "a\\u0000b"}',
                           headers={"Content-Type": content_type} if content_type else {})
        assert resp.status_code == 422 and locs(resp) == [["body", "name"]], (content_type, resp.text)
    resp = client.patch("/api/v1/grids/a%00b", json={"supervisor": "Wang"})
    assert resp.status_code == 422 and locs(resp) == [["path"]]
    resp = client.post("/api/v1/reports", data={"issue_type": "flooding", "lat": 31.2, "lon": 121.4, "text": "wet\x00"},
                       files={"photo": ("p.jpg", jpeg(), "image/jpeg")})
    assert resp.status_code == 422 and ["body", "text"] in locs(resp)
    assert nothing_stored(backend)
    # an escaped backslash before "u0000" is not a NUL: passes through
    resp = client.post("/api/v1/workers", json={"name": "back\\u0000slash"})
    assert resp.status_code == 201 and resp.json()["name"] == "back\\u0000slash"


def test_a_track_id_beyond_the_database_integer_is_refused(client, backend):
    for track_id in (2**31, 2**63, -1):
        resp = post(client, event_json(track_id=track_id))
        assert resp.status_code == 422 and ["body", "event", "track_id"] in locs(resp), (track_id, resp.text)
    assert nothing_stored(backend)


@pytest.mark.parametrize("field,value", [
    ("first_seen", "0001-01-01T00:00:00+05:00"),  # before year 1 once in UTC: overflowed in dedup
    ("confirmed_at", "9999-12-31T23:00:00-05:00"),  # past year 9999 in UTC: overflowed on INSERT
    ("confirmed_at", "3000-01-01T00:00:00Z"),  # would keep its order "seen" for centuries
    ("first_seen", "1970-01-01T00:00:05Z"),  # a box that booted without NTP
])
def test_event_times_from_a_wrong_clock_are_refused(client, backend, field, value):
    ev = event_json()
    ev[field] = value
    if field == "first_seen":
        ev["confirmed_at"] = max(ev["confirmed_at"], value)
    else:
        ev["first_seen"] = "2026-01-01T00:00:00Z"
    resp = post(client, ev)
    assert resp.status_code == 422 and ["body", "event", field] in locs(resp), resp.text
    assert nothing_stored(backend)


def test_a_refused_nan_is_answered_422_not_500(client, backend):
    for path, body in (("/api/v1/workers", '{"name": "w", "lat": NaN, "lon": 1}'),
                       ("/api/v1/orders/1/close", '{"rating": Infinity}')):
        resp = client.post(path, content=body, headers={"Content-Type": "application/json"})
        assert resp.status_code == 422, (path, resp.text)
        assert resp.json()["detail"][0]["input"] in ("nan", "inf")
    assert counts(backend)["order"] == 0


def test_a_lone_surrogate_escape_is_answered_422_not_500(client, backend):
    """JSON may spell "\\ud800"; Python parses it into a str with no UTF-8, refused by the schema,
    and the 422 that echoed it could not be written."""
    for path, body in (("/api/v1/workers", '{"name": "w\\ud800"}'), ("/api/v1/grids", '{"id": "g", "name": "\\udfff"}')):
        resp = client.post(path, content=body, headers={"Content-Type": "application/json"})
        assert resp.status_code == 422, (path, resp.text)
        assert resp.json()["detail"][0]["input"].endswith(("\\ud800", "\\udfff"))
    event = json.dumps(event_json()).replace('"cam-1"', '"cam-\\ud800"')
    resp = client.post("/api/v1/events", data={"event": event}, files={"frame": ("f.jpg", jpeg(), "image/jpeg")})
    assert resp.status_code == 422 and locs(resp) == [["body", "event"]], resp.text  # (its parser refuses it)
    assert nothing_stored(backend)


def test_true_is_not_taken_for_the_number_one(client, backend):
    """JSON's true was read as 1: dispatching to worker 1, or a rating of 1."""
    order_id = post(client, event_json()).json()["order_id"]
    client.post("/api/v1/workers", json={"name": "w"})
    for path, body in ((f"/api/v1/orders/{order_id}/dispatch", {"worker_id": True}),
                       (f"/api/v1/orders/{order_id}/close", {"rating": True}),
                       ("/api/v1/orders/bulk-reject", {"order_ids": [True], "reason": "other"}),
                       ("/api/v1/keys", {"name": "k", "role": "worker", "worker_id": True})):
        resp = client.post(path, json=body)
        assert resp.status_code == 422, (path, resp.text)
    assert client.get(f"/api/v1/orders/{order_id}").json()["state"] == "reported"


def test_half_a_position_is_refused(client, backend):
    ev = event_json()
    del ev["camera"]["lon"]
    resp = post(client, ev)
    assert resp.status_code == 422 and "lat and lon go together" in resp.text
    assert nothing_stored(backend)
    resp = client.post("/api/v1/workers", json={"name": "Li", "lat": 31.2})
    assert resp.status_code == 422 and "lat and lon go together" in resp.text
    worker = client.post("/api/v1/workers", json={"name": "Li", "lat": 31.2, "lon": 121.4}).json()
    resp = client.patch(f"/api/v1/workers/{worker['id']}", json={"lon": 121.5})
    assert resp.status_code == 422 and client.get("/api/v1/workers").json()[0]["lon"] == 121.4
    assert client.put("/api/v1/cameras/cam-9", json={"lat": 31.0}).status_code == 422
    add_grid(client, "g-2")
    assert client.put("/api/v1/cameras/cam-9", json={"grid_id": "g-2"}).status_code == 200  # no position: fine


def test_misspelled_and_repeated_form_parts_are_refused_not_dropped(client, backend):
    form = {"event": json.dumps(event_json())}
    img = ("f.jpg", jpeg(), "image/jpeg")
    resp = client.post("/api/v1/events", data=form, files={"frame": img, "annotate": img})
    assert resp.status_code == 422 and locs(resp) == [["body", "annotate"]], resp.text
    assert "annotated" in resp.json()["detail"][0]["msg"]
    resp = client.post("/api/v1/events", data=form, files=[("frame", img), ("frame", img)])
    assert resp.status_code == 422 and locs(resp) == [["body", "frame"]], resp.text
    resp = client.post("/api/v1/reports", data={"issue_type": "flooding", "lat": 31.2, "lon": 121.4, "txt": "wet"},
                       files={"photo": img})
    assert resp.status_code == 422 and locs(resp) == [["body", "txt"]]
    assert nothing_stored(backend)
    assert post(client, event_json(), annotated=jpeg(), crop=jpeg()).status_code == 201  # the declared parts pass


def test_crafted_cursors_and_ids_are_refused(client):
    def cursor(value) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    for params in ({"cursor": cursor([True, True])},
                   {"cursor": cursor(["9999-12-31T23:00:00-05:00", 1]), "sort": "updated"},
                   {"cursor": cursor(["0001-01-01T00:00:00+05:00", 1]), "sort": "due"}):
        resp = client.get("/api/v1/orders", params=params)
        assert resp.status_code == 422 and locs(resp) == [["query", "cursor"]], (params, resp.text)
    assert client.get("/open311/v2/requests/².json").status_code == 400  # "²".isdigit() is True
    for name in ("..", ".", ".hidden"):
        assert client.post("/api/v1/exports", json={"name": name}).status_code == 422, name


def test_a_frame_of_another_size_than_the_event_says_is_refused(client, backend):
    """The box is in the frame's pixels; the export normalises it by the declared size."""
    resp = post(client, event_json(frame_width=1280, frame_height=720, bbox=(100, 100, 400, 300)),
                frame=jpeg(size=(320, 240)))
    assert resp.status_code == 422 and ["body", "frame"] in locs(resp) and "320x240" in resp.text
    assert nothing_stored(backend)
