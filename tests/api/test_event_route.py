"""A plain single event is answered ahead of the middleware stack (api/event_route.py) with
what the route answers; anything else still reaches the route, whose refusals stay its own."""

from __future__ import annotations

import json
import uuid

import pytest

from api import routes
from api.event_route import split_form
from tests.api.factories import auth, counts, event_json, jpeg, nothing_stored, post, stored_objects
from tests.api.fleet_helpers import beat, box_key, camera, unbound_edge_key

B = b"b0undary"


@pytest.fixture
def stack_calls(monkeypatch) -> list[str]:
    """Event ids that went down the stack to the route's own ingest."""
    calls: list[str] = []
    route_ingest = routes.events.ingest_event

    def counted(session, store, settings, event, images):
        calls.append(str(event.event_id))
        return route_ingest(session, store, settings, event, images)

    monkeypatch.setattr(routes.events, "ingest_event", counted)
    return calls


def _primed(client, backend) -> dict[str, str]:
    """An edge key this process remembers (its first post went through the stack's key check)."""
    headers = auth(unbound_edge_key(backend))
    assert post(client, event_json(camera="cam-50"), headers=headers).status_code == 201
    return headers


def test_a_plain_event_is_stored_ahead_of_the_stack_once_per_event_id(client, backend, stack_calls):
    headers = _primed(client, backend)
    first = event_json(camera="cam-1")
    resp = post(client, first, headers=headers)
    assert resp.status_code == 201 and resp.json()["new_order"] is True and resp.json()["replay"] is False
    joining = post(client, event_json(camera="cam-1"), headers=headers, crop=jpeg())
    assert joining.status_code == 201
    assert joining.json()["order_id"] == resp.json()["order_id"] and joining.json()["new_order"] is False
    replay = post(client, first, headers={**headers, "Idempotency-Key": first["event_id"].upper()})
    assert replay.status_code == 200
    assert replay.json() == {**resp.json(), "replay": True}
    assert len(stack_calls) == 1  # only the priming post
    assert counts(backend) == {"camera": 2, "order": 2, "event": 3, "evidence": 4}
    assert len(stored_objects(backend)) == 4


def test_answers_match_the_routes_own(client, backend, stack_calls):
    """The same posts through the stack (a query string sends them there) answer the same."""
    headers = _primed(client, backend)
    event = event_json(camera="cam-2")
    fresh = post(client, event, headers=headers)
    ahead = post(client, event, headers=headers)
    down = client.post("/api/v1/events?via=stack", data={"event": json.dumps(event)},
                       files={"frame": ("frame.jpg", jpeg(), "image/jpeg")}, headers=headers)
    assert fresh.status_code == 201 and (ahead.status_code, ahead.content) == (down.status_code, down.content) \
        and ahead.headers["content-type"] == down.headers["content-type"]
    assert stack_calls[-1] == event["event_id"]
    # A frame that is not an image: the app's handler answers, naming the part, nothing stored.
    before = counts(backend), stored_objects(backend)
    bad = event_json(camera="cam-2")
    ahead = post(client, bad, frame=b"not a jpeg", headers=headers)
    down = client.post("/api/v1/events?via=stack", data={"event": json.dumps(bad)},
                       files={"frame": ("frame.jpg", b"not a jpeg", "image/jpeg")}, headers=headers)
    assert ahead.status_code == 422 and (ahead.status_code, ahead.json()) == (down.status_code, down.json())
    assert "frame" in json.dumps(ahead.json()) and (counts(backend), stored_objects(backend)) == before


def test_a_camera_of_another_box_is_refused_ahead_of_the_stack(client, backend, stack_calls):
    a, b = box_key(backend, "box-a"), box_key(backend, "box-b")
    assert beat(client, "box-a", a, camera("cam-1")).status_code == 200
    assert beat(client, "box-b", b, camera("cam-2")).status_code == 200
    assert post(client, event_json(camera="cam-1"), headers=auth(a)).status_code == 201
    before = counts(backend), stored_objects(backend)
    resp = post(client, event_json(camera="cam-2"), headers=auth(a))
    assert resp.status_code == 403 and "cam-2" in resp.json()["detail"] and "box-b" in resp.json()["detail"]
    assert (counts(backend), stored_objects(backend)) == before
    assert post(client, event_json(camera="cam-2"), headers=auth(b)).status_code == 201


@pytest.mark.parametrize("case", ["clock", "idempotency", "unknown part", "event as a file", "bad json"])
def test_what_the_route_refuses_goes_down_the_stack(sqlite_client, sqlite_backend, stack_calls, case):
    headers = _primed(sqlite_client, sqlite_backend)
    before = counts(sqlite_backend)
    event = event_json(camera="cam-3")
    data, files = {"event": json.dumps(event)}, {"frame": ("frame.jpg", jpeg(), "image/jpeg")}
    loc = ["body", "event", "first_seen"]
    if case == "clock":
        data["event"] = json.dumps({**event, "first_seen": "1999-01-01T00:00:00Z"})
    elif case == "idempotency":
        headers = {**headers, "Idempotency-Key": str(uuid.uuid4())}
        loc = ["header", "Idempotency-Key"]
    elif case == "unknown part":
        files["annotate"] = ("a.jpg", jpeg(), "image/jpeg")
        loc = ["body", "annotate"]
    elif case == "event as a file":
        files["event"] = ("event.json", data.pop("event").encode(), "application/json")
        loc = ["body", "event"]
    else:
        data["event"] = "{not json"
        loc = ["body", "event"]
    resp = sqlite_client.post("/api/v1/events", data=data, files=files, headers=headers)
    assert resp.status_code == 422 and resp.json()["detail"][0]["loc"][:len(loc)] == loc, resp.text
    assert counts(sqlite_backend) == before and len(stack_calls) == 1


def test_a_post_without_a_remembered_key_is_the_stacks(sqlite_client, sqlite_backend, stack_calls):
    resp = post(sqlite_client, event_json(camera="cam-4"), headers={"Authorization": "Bearer nope"})
    assert resp.status_code == 401 and nothing_stored(sqlite_backend)
    resp = post(sqlite_client, event_json(camera="cam-4"), headers={})  # the admin key of the fixture
    assert resp.status_code == 201 and len(stack_calls) == 1


def _body(*parts: bytes, end: bytes = b"--" + B + b"--\r\n") -> bytes:
    return b"".join(b"--" + B + b"\r\n" + p + b"\r\n" for p in parts) + end


EVENT = b'Content-Disposition: form-data; name="event"\r\n\r\n{"x": 1}'
FRAME = b'Content-Disposition: form-data; name="frame"; filename="f.jpg"\r\nContent-Type: image/jpeg\r\n\r\n\xff\xd8--'


def test_split_form_reads_what_an_edge_sends():
    crop = b'content-disposition: form-data; name="crop"; filename="c.jpg"\r\n\r\nCROP\r\n'
    assert split_form(_body(EVENT, FRAME, crop), B) == {
        b"event": (False, b'{"x": 1}'), b"frame": (True, b"\xff\xd8--"), b"crop": (True, b"CROP\r\n")}
    assert split_form(_body(EVENT, FRAME, end=b"--" + B + b"--"), B) is not None


@pytest.mark.parametrize("body", [
    _body(EVENT),  # no frame
    _body(FRAME),  # no event
    _body(EVENT, FRAME, FRAME),  # a part twice
    _body(EVENT, FRAME.replace(b'"frame"', b'"annotate"')),  # a part the route does not take
    _body(EVENT.replace(b'"event"', b'"event"; filename="e.json"'), FRAME),  # the event as a file
    _body(EVENT.replace(b"\r\n\r\n", b"\r\nContent-Type: text/plain\r\n\r\n"), FRAME),  # a typed event
    _body(EVENT, FRAME.replace(b"\r\n\r\n", b"\r\nX-Extra: 1\r\n\r\n")),  # another header
    _body(EVENT, FRAME.replace(b"filename=", b"filename*=")),  # another form of disposition
    _body(EVENT, FRAME + b"\r\n--" + B + b"X"),  # the delimiter inside a part
    _body(EVENT, FRAME, end=b"--" + B + b"--\r\ntrailing"),  # data after the close
    _body(EVENT, FRAME, end=b""),  # no close
    b"preamble\r\n" + _body(EVENT, FRAME),
])
def test_split_form_leaves_anything_else_to_the_stack(body):
    assert split_form(body, B) is None
