"""The single event route reads its multipart form by hand (api/event_form.py): it refuses
what FastAPI's Form/File parameters refused, naming the part, and documents the same body."""

from __future__ import annotations

import json

from tests.api.factories import event_json, jpeg, nothing_stored


def test_parts_of_the_wrong_kind_or_unknown_or_twice_are_422_naming_the_part(sqlite_client, sqlite_backend):
    ev = json.dumps(event_json())
    cases = [
        ({"frame": "text, not a file"}, {"event": ("e.json", ev.encode(), "application/json")}, ["body", "event"]),
        ({"event": ev, "frame": "text, not a file"}, {}, ["body", "frame"]),
        ({"event": ev}, {"frame": ("f.jpg", jpeg(), "image/jpeg"), "annotate": ("a.jpg", jpeg(), "image/jpeg")},
         ["body", "annotate"]),
        ({"event": ev}, [("frame", ("f.jpg", jpeg(), "image/jpeg")), ("frame", ("g.jpg", jpeg(), "image/jpeg"))],
         ["body", "frame"]),
    ]
    for data, files, loc in cases:
        resp = sqlite_client.post("/api/v1/events", data=data, files=files)
        assert resp.status_code == 422, resp.text
        assert loc in [e["loc"] for e in resp.json()["detail"]], resp.text
    resp = sqlite_client.post("/api/v1/events", data={}, files={"annotated": ("a.jpg", jpeg(), "image/jpeg")})
    assert {tuple(e["loc"]) for e in resp.json()["detail"]} == {("body", "event"), ("body", "frame")}
    assert nothing_stored(sqlite_backend)


def test_the_body_and_the_idempotency_header_are_documented(sqlite_client):
    op = sqlite_client.get("/openapi.json").json()["paths"]["/api/v1/events"]["post"]
    schema = op["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert set(schema["properties"]) == {"event", "frame", "annotated", "crop"}
    assert schema["required"] == ["event", "frame"]
    assert {p["name"] for p in op["parameters"]} >= {"idempotency-key", "authorization", "x-api-key"}
