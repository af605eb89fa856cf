"""Model rollout, the API's side: a push is checked (manifest, issue types, each file's size
and sha256) and stores nothing when refused; a complete version is listed, assigned to named
boxes first (a canary) or to all, and reaches each box's config; only admins push and assign."""

from __future__ import annotations

import hashlib

import httpx
import yaml
from fastapi.testclient import TestClient

from api.main import create_app
from api.models import OrderState, RejectReason
from tests.api.factories import auth, event_json, make_key, post, set_order
from tests.api.fleet_helpers import beat, box_key, camera
from tests.api.model_helpers import FILES, MANIFEST, described, push, push_body


def _stored(client) -> list[str]:
    client.app.state.store.ping()  # makes the bucket of an S3 store nothing was written to yet
    return sorted(key for key, _ in client.app.state.store.listing("models/"))


def test_a_pushed_model_is_ready_once_every_file_arrived_whole(client, backend):
    first = client.post("/api/v1/models", json=push_body())
    assert first.status_code == 201, first.text
    assert first.json()["status"] == "uploading" and sorted(first.json()["missing"]) == sorted(FILES)
    answer = push(client)
    assert answer["status"] == "ready" and answer["missing"] == []
    assert _stored(client) == ["models/sw-test/2/manifest.yaml", "models/sw-test/2/sw-test.onnx",
                               "models/sw-test/2/sw-test.pt"]
    assert client.app.state.store.get("models/sw-test/2/sw-test.onnx") == FILES["sw-test.onnx"]

    again = client.post("/api/v1/models", json=push_body())  # a retried push: nothing left to send
    assert again.status_code == 200 and again.json()["missing"] == []
    other = client.post("/api/v1/models", json=push_body(files={**FILES, "sw-test.pt": b"retrained"}))
    assert other.status_code == 409 and "new version" in other.json()["detail"]

    listed = client.get("/api/v1/models").json()
    assert [(m["name"], m["version"], m["status"]) for m in listed] == [("sw-test", "2", "ready")]
    model = listed[0]
    assert model["weights_sha256"] == hashlib.sha256(FILES["sw-test.pt"]).hexdigest()
    assert {f["path"] for f in model["files"]} == {"manifest.yaml", *FILES} and all(f["stored"] for f in model["files"])
    assert model["classes"]["0"]["issue_type"] == "street_vending"


def test_a_push_without_a_manifest_or_with_unknown_issue_types_is_refused_and_stores_nothing(client, backend):
    no_manifest = client.post("/api/v1/models", json={"files": described(FILES)})
    assert no_manifest.status_code == 422 and no_manifest.json()["detail"][0]["loc"] == ["body", "manifest"]

    potholes = {**MANIFEST, "classes": {**MANIFEST["classes"], 2: {"name": "hole", "issue_type": "potholes"}}}
    resp = client.post("/api/v1/models", json=push_body(potholes))
    assert resp.status_code == 422, resp.text
    detail = resp.json()["detail"][0]
    assert detail["loc"] == ["body", "manifest", "classes", "2", "issue_type"] and "'potholes'" in detail["msg"]

    missing_export = {**MANIFEST, "exports": {"onnx": "sw-test.onnx", "openvino": "ov/sw-test.xml"}}
    resp = client.post("/api/v1/models", json=push_body(missing_export))
    assert resp.status_code == 422 and resp.json()["detail"][0]["loc"] == ["body", "manifest", "exports", "openvino"]
    no_weights = {k: v for k, v in MANIFEST.items() if k != "weights"}
    resp = client.post("/api/v1/models", json=push_body(no_weights))
    assert resp.status_code == 422 and resp.json()["detail"][0]["loc"] == ["body", "manifest", "weights"]
    resp = client.post("/api/v1/models", json={"manifest": "name: [unclosed", "files": described(FILES)})
    assert resp.status_code == 422 and "not YAML" in resp.json()["detail"][0]["msg"]
    resp = client.post("/api/v1/models", json={"manifest": yaml.safe_dump(MANIFEST),
                                               "files": described({"../escape.pt": b"x"})})
    assert resp.status_code == 422 and resp.json()["detail"][0]["loc"][:3] == ["body", "files", 0]

    assert client.get("/api/v1/models").json() == [] and _stored(client) == []


def test_a_corrupted_upload_is_refused_stores_nothing_and_the_version_cannot_be_assigned(client, backend):
    beat(client, "box-a", box_key(backend, "box-a"), camera("cam-1"))
    corrupt = bytearray(FILES["sw-test.onnx"])
    corrupt[10] ^= 0xFF
    answer = push(client, sent={"sw-test.onnx": bytes(corrupt)})
    assert answer["status"] == "uploading" and answer["missing"] == ["sw-test.onnx"]
    assert answer["refused"]["detail"][0]["loc"] == ["body"] and "sha256" in answer["refused"]["detail"][0]["msg"]
    short = client.put("/api/v1/models/sw-test/2/files/sw-test.onnx", content=FILES["sw-test.onnx"][:-1])
    assert short.status_code == 422 and "bytes arrived" in short.json()["detail"][0]["msg"]
    assert "models/sw-test/2/sw-test.onnx" not in _stored(client)
    assert client.put("/api/v1/models/sw-test/2/files/other.bin", content=b"x").status_code == 404

    refused = client.put("/api/v1/models/assignment", json={"name": "sw-test", "version": "2"})
    assert refused.status_code == 409 and "sw-test.onnx missing" in refused.json()["detail"]
    assert client.get("/api/v1/boxes/box-a/config").json()["model"] is None
    assert client.put("/api/v1/models/assignment", json={"name": "sw-test", "version": "9"}).status_code == 404

    # The same push again, whole this time: it completes.
    assert push(client)["status"] == "ready"


def test_a_canary_box_gets_the_version_first_then_every_box(client, backend):
    keys = {b: box_key(backend, b) for b in ("box-a", "box-b")}
    beat(client, "box-a", keys["box-a"], camera("cam-1"))
    beat(client, "box-b", keys["box-b"], camera("cam-2"))
    push(client)

    def config(box: str, etag: str | None = None) -> httpx.Response:
        return client.get(f"/api/v1/boxes/{box}/config", headers={**auth(keys[box]),
                                                                  **({"If-None-Match": etag} if etag else {})})

    before = config("box-b").headers["etag"]
    resp = client.put("/api/v1/models/assignment", json={"name": "sw-test", "version": "2", "boxes": ["box-a"]})
    assert resp.status_code == 200 and resp.json() == {"all": None, "boxes": {"box-a": {"name": "sw-test",
                                                                                       "version": "2"}}}
    model = config("box-a").json()["model"]
    assert (model["name"], model["version"], model["weights"]) == ("sw-test", "2", "sw-test.pt")
    assert model["weights_sha256"] == hashlib.sha256(FILES["sw-test.pt"]).hexdigest()
    assert {f["path"]: f["size"] for f in model["files"]} == {"manifest.yaml": len(yaml.safe_dump(MANIFEST)),
                                                              **{p: len(d) for p, d in FILES.items()}}
    assert config("box-b").json()["model"] is None and config("box-b", before).status_code == 304

    # The canary runs it (its heartbeat says so); box-b is told in the next step.
    beat(client, "box-a", keys["box-a"], camera("cam-1"), model={"name": "sw-test", "version": "2"})
    listed = client.get("/api/v1/models").json()
    ours = next(m for m in listed if m["name"] == "sw-test")
    assert ours["assigned_boxes"] == ["box-a"] and not ours["assigned_to_all"] and ours["running_on"] == ["box-a"]
    theirs = next(m for m in listed if m["status"] == "not_pushed")  # what box-b's YAML runs
    assert (theirs["name"], theirs["running_on"]) == ("streetwatch-v2", ["box-b"])

    resp = client.put("/api/v1/models/assignment", json={"name": "sw-test", "version": "2"})
    assert resp.json() == {"all": {"name": "sw-test", "version": "2"}, "boxes": {}}
    assert config("box-b", before).status_code == 200 and config("box-b").json()["model"]["version"] == "2"
    beat(client, "box-b", keys["box-b"], camera("cam-2"), model_error="sw-test v2: sha256 mismatch on sw-test.onnx")
    ours = next(m for m in client.get("/api/v1/models").json() if m["name"] == "sw-test")
    assert ours["assigned_to_all"] and ours["failing_on"] == {"box-b": "sw-test v2: sha256 mismatch on sw-test.onnx"}

    unknown = client.put("/api/v1/models/assignment", json={"name": "sw-test", "version": "2", "boxes": ["box-z"]})
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == ["body", "boxes", "0"]


def test_an_admin_withdraws_a_canary_and_the_every_box_assignment(client, backend):
    keys = {b: box_key(backend, b) for b in ("box-a", "box-b")}
    beat(client, "box-a", keys["box-a"], camera("cam-1"))
    beat(client, "box-b", keys["box-b"], camera("cam-2"))
    push(client)
    push(client, {**MANIFEST, "version": "3"})

    def told(box: str) -> str | None:
        model = client.get(f"/api/v1/boxes/{box}/config", headers=auth(keys[box])).json()["model"]
        return model and model["version"]

    client.put("/api/v1/models/assignment", json={"name": "sw-test", "version": "2"})
    client.put("/api/v1/models/assignment", json={"name": "sw-test", "version": "3", "boxes": ["box-a"]})
    canary_etag = client.get("/api/v1/boxes/box-a/config", headers=auth(keys["box-a"])).headers["etag"]
    assert (told("box-a"), told("box-b")) == ("3", "2")

    resp = client.delete("/api/v1/models/assignment/box-a")  # the canary is withdrawn: box-a follows everyone
    assert resp.status_code == 200 and resp.json() == {"all": {"name": "sw-test", "version": "2"}, "boxes": {}}
    assert (told("box-a"), told("box-b")) == ("2", "2")
    stale = client.get("/api/v1/boxes/box-a/config", headers={**auth(keys["box-a"]), "If-None-Match": canary_etag})
    assert stale.status_code == 200  # the box's next poll sees the change
    again = client.delete("/api/v1/models/assignment/box-a")
    assert again.status_code == 404 and "box-a" in again.json()["detail"]
    assert client.delete("/api/v1/models/assignment/bad%20box").status_code == 422

    client.put("/api/v1/models/assignment", json={"name": "sw-test", "version": "3", "boxes": ["box-b"]})
    resp = client.delete("/api/v1/models/assignment")  # everyone's: box-b keeps its own, box-a its YAML's
    assert resp.json() == {"all": None, "boxes": {"box-b": {"name": "sw-test", "version": "3"}}}
    assert (told("box-a"), told("box-b")) == (None, "3")
    assert client.delete("/api/v1/models/assignment").status_code == 404
    ours = next(m for m in client.get("/api/v1/models").json() if m["version"] == "2")
    assert not ours["assigned_to_all"] and ours["assigned_boxes"] == []

    for headers in (auth(keys["box-b"]), auth(make_key(backend, "reviewer"))):
        assert client.delete("/api/v1/models/assignment/box-b", headers=headers).status_code == 403
        assert client.delete("/api/v1/models/assignment", headers=headers).status_code == 403
    assert client.get("/api/v1/models/assignment").json()["boxes"] == {"box-b": {"name": "sw-test", "version": "3"}}


def test_boxes_fetch_model_files_by_links_and_only_admins_push_or_assign(client, backend):
    push(client)
    edge = auth(box_key(backend, "box-a"))
    reviewer = auth(make_key(backend, "reviewer"))
    got = client.get("/api/v1/models/sw-test/2/links", headers=edge)
    assert got.status_code == 200, got.text
    for link in got.json()["files"]:
        url = link["url"]
        data = (client.get(url, headers={"Authorization": ""}) if url.startswith("/") else httpx.get(url)).content
        assert hashlib.sha256(data).hexdigest() == link["sha256"] and len(data) == link["size"], link["path"]
    assert client.get("/api/v1/models/sw-test/2/links", headers=reviewer).status_code == 403
    for headers in (edge, reviewer):
        assert client.post("/api/v1/models", json=push_body(), headers=headers).status_code == 403
        assert client.put("/api/v1/models/sw-test/2/files/sw-test.pt", content=b"x", headers=headers).status_code == 403
        assert client.put("/api/v1/models/assignment", json={"name": "sw-test", "version": "2"},
                          headers=headers).status_code == 403
    assert client.get("/api/v1/models", headers=edge).status_code == 403
    assert client.get("/api/v1/models", headers=reviewer).status_code == 200


def test_the_stats_show_a_rollouts_effect_box_by_box(client, backend):
    keys = {b: box_key(backend, b) for b in ("box-a", "box-b")}
    beat(client, "box-a", keys["box-a"], camera("cam-1"))
    beat(client, "box-b", keys["box-b"], camera("cam-2"))
    new, old = {"name": "sw-test", "version": "2"}, {"name": "sw-test", "version": "1"}
    canary = post(client, event_json(camera="cam-1", model=new), headers=auth(keys["box-a"])).json()["order_id"]
    post(client, event_json(camera="cam-1", issue_type="flooding", model=old), headers=auth(keys["box-a"]))
    post(client, event_json(camera="cam-2", model=old), headers=auth(keys["box-b"]))
    set_order(backend, canary, state=OrderState.rejected, reject_reason=RejectReason.not_an_issue)
    rows = {r["key"]: r for r in client.get("/api/v1/stats").json()["per_box_model_version"]}
    assert sorted(rows) == ["box-a/sw-test:1", "box-a/sw-test:2", "box-b/sw-test:1"]
    assert rows["box-a/sw-test:2"]["false_alarms"] == 1 and rows["box-a/sw-test:2"]["false_alarm_rate"] == 1.0
    assert rows["box-b/sw-test:1"]["orders"] == 1 and rows["box-b/sw-test:1"]["false_alarms"] == 0


def test_model_files_have_their_own_size_limit_beyond_the_image_uploads(sqlite_backend):
    settings = sqlite_backend.model_copy(update={"max_upload_bytes": 1000, "max_model_file_bytes": 2_000_000})
    # Beyond the cap of other bodies with files (3 x max_upload_bytes + 1 MiB), within the models' own.
    big = {"sw-test.pt": b"w" * 1_500_000, "sw-test.onnx": b"o" * 1_200_000}
    with TestClient(create_app(settings), headers=auth(make_key(settings, "admin"))) as client:
        assert push(client, files=big)["status"] == "ready"
        too_big = {**big, "sw-test.pt": b"w" * 2_500_000}
        refused = client.post("/api/v1/models", json=push_body({**MANIFEST, "version": "3"}, too_big))
        assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["body", "files", "0", "size"]
        assert "STREETWATCH_MAX_MODEL_FILE_BYTES" in refused.json()["detail"][0]["msg"]
        declared = client.post("/api/v1/models", json=push_body({**MANIFEST, "version": "4"}))
        assert declared.status_code == 201
        over = client.put("/api/v1/models/sw-test/4/files/sw-test.pt", content=b"w" * 2_500_000,
                          headers={"Content-Type": "application/octet-stream"})
        assert over.status_code in (413, 422), over.text
        assert "models/sw-test/4/sw-test.pt" not in _stored(client)
