"""Reviewed orders become a YOLO dataset: labels, hard negatives, corrected types, provenance,
near-duplicate frames dropped; incremental and idempotent; CLI and admin API run the same job."""

from __future__ import annotations

import pytest

import csv
import io
import time

import numpy as np
import yaml
from PIL import Image
from sqlmodel import Session

from api.db import get_engine
from api.evidence_store import make_store
from api.review_export import export_reviews
from tests.api.factories import add_grid, add_worker, auth, event_json, make_key, post


def scene(seed: int, quality: int = 90) -> bytes:
    """A distinct 320×240 frame per seed (smooth random shapes, so hashes differ)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)
    img = Image.fromarray(small).resize((320, 240), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_export_reviews_end_to_end(client, backend, tmp_path):
    reviewer = auth(make_key(backend, "reviewer"))
    add_worker(client, "W", on_duty=False)
    confirmed = post(client, event_json(bbox=(32, 24, 96, 120), camera="cam-1"), frame=scene(1)).json()["order_id"]
    post(client, event_json(bbox=(34, 24, 98, 120), camera="cam-1"), frame=scene(1, quality=70))  # same view
    post(client, event_json(bbox=(32, 24, 96, 120), camera="cam-1"), frame=scene(2))
    rejected = post(client, event_json(camera="cam-2"), frame=scene(3)).json()["order_id"]
    renamed = post(client, event_json(camera="cam-3", issue_type="clutter"), frame=scene(4)).json()["order_id"]
    add_grid(client, "g-4")
    add_worker(client, "On duty", ["g-4"])
    auto = event_json(camera="cam-4")
    auto["camera"]["grid_id"] = "g-4"
    unreviewed = post(client, auto, frame=scene(5)).json()["order_id"]  # dispatched by the system, not a person
    assert client.get(f"/api/v1/orders/{unreviewed}").json()["state"] == "dispatched"
    assert client.post(f"/api/v1/orders/{confirmed}/dispatch", json={"worker_id": 1}, headers=reviewer).is_success
    assert client.post(f"/api/v1/orders/{rejected}/reject", json={"reason": "not_an_issue", "note": "a van"},
                       headers=reviewer).is_success
    assert client.post(f"/api/v1/orders/{renamed}/reject", json={"reason": "wrong_type",
                                                                  "corrected_type": "flooding"},
                       headers=reviewer).is_success
    assert client.post(f"/api/v1/orders/{unreviewed}/reject", json={"reason": "permitted",
                                                                     "corrected_type": "flooding"}).status_code == 422
    # a licensed market: rejected, but the model saw a real stall, so it is a positive
    market = post(client, event_json(camera="cam-5", issue_type="street_vending"), frame=scene(6)).json()["order_id"]
    assert client.post(f"/api/v1/orders/{market}/reject", json={"reason": "permitted"}, headers=reviewer).is_success

    out = tmp_path / "reviews"
    engine = get_engine(backend.database_url)
    with Session(engine) as session:
        summary = export_reviews(session, make_store(backend), out, progress=False)
    assert (summary.new_images, summary.duplicates_skipped, summary.unreviewed_orders) == (5, 1, 1)
    prov = {r["order_id"]: r for r in _rows(out / "provenance.csv")}
    assert set(prov) == {str(confirmed), str(rejected), str(renamed), str(market)}
    assert (prov[str(market)]["verdict"], prov[str(market)]["reason"]) == ("confirmed", "permitted")
    market_label = (out / "labels" / (prov[str(market)]["image"].rsplit(".", 1)[0] + ".txt")).read_text()
    assert market_label.startswith("0 ")  # street_vending
    by_verdict = {r["verdict"]: r for r in _rows(out / "provenance.csv") if r["order_id"] != str(market)}
    assert by_verdict["rejected"]["camera"] == "cam-2" and by_verdict["confirmed"]["model_version"] == "test:1"
    labels = {r["image"]: (out / "labels" / (r["image"].rsplit(".", 1)[0] + ".txt")).read_text()
              for r in _rows(out / "provenance.csv")}
    first = next(r["image"] for r in _rows(out / "provenance.csv") if r["verdict"] == "confirmed")
    cls, cx, cy, w, h = labels[first].split()
    assert cls == "1" and abs(float(cx) - 0.2) < 1e-6 and abs(float(w) - 0.2) < 1e-6  # clutter, normalised box
    assert labels[by_verdict["rejected"]["image"]] == ""  # hard negative
    assert labels[by_verdict["reclassified"]["image"]].startswith("2 ")  # flooding, as corrected
    assert _rows(out / "negatives.csv") == [{"image": by_verdict["rejected"]["image"], "order_id": str(rejected),
                                             "reason": "not_an_issue"}]
    assert yaml.safe_load((out / "data.yaml").read_text())["names"] == {0: "street_vending", 1: "clutter",
                                                                      2: "flooding"}
    frames = sorted(p.name for p in (out / "images").iterdir())
    assert len(frames) == 5 and (out / "images" / first).read_bytes()[:3] == b"\xff\xd8\xff"

    # Again: nothing new. Then a verdict changes: the labels follow.
    with Session(engine) as session:
        again = export_reviews(session, make_store(backend), out, progress=False)
    assert (again.new_images, again.relabelled, again.total_images, again.duplicates_skipped) == (0, 0, 5, 0)
    assert client.post(f"/api/v1/orders/{rejected}/reopen", json={"note": "it was a stall"}).is_success
    assert client.post(f"/api/v1/orders/{rejected}/dispatch", json={"worker_id": 1}, headers=reviewer).is_success
    with Session(engine) as session:
        changed = export_reviews(session, make_store(backend), out, progress=False)
    assert changed.relabelled == 1
    assert (out / "labels" / (by_verdict["rejected"]["image"].rsplit(".", 1)[0] + ".txt")).read_text().startswith("1 ")
    assert _rows(out / "negatives.csv") == []


def test_admin_endpoint_runs_the_same_export(client, backend, tmp_path):
    settings_dir = tmp_path / "exports"
    client.app.state.settings = backend.model_copy(update={"export_dir": settings_dir})
    order_id = post(client, event_json(), frame=scene(7)).json()["order_id"]
    client.post(f"/api/v1/orders/{order_id}/reject", json={"reason": "not_an_issue"})
    job = client.post("/api/v1/exports", json={"name": "week-48"})
    assert job.status_code == 202
    job_id = job.json()["job_id"]
    for _ in range(100):
        state = client.get(f"/api/v1/exports/{job_id}").json()
        if state["state"] != "running":
            break
        time.sleep(0.1)
    assert state["state"] == "done", state
    assert state["summary"]["new_images"] == 1 and (settings_dir / "week-48" / "negatives.csv").exists()
    assert client.post("/api/v1/exports", json={"name": "../escape"}).status_code == 422
    assert client.get("/api/v1/exports/nope").status_code == 404
    reviewer = auth(make_key(backend, "reviewer"))
    assert client.post("/api/v1/exports", json={}, headers=reviewer).status_code == 403


def test_one_export_at_a_time_writes_into_a_folder(client, backend, tmp_path):
    """Two exports into one folder each counted the other's images as theirs, or one failed
    on the other's temporary file; the folder's lock spans API processes and the CLI."""
    from api.review_export import ExportBusy, export_lock

    client.app.state.settings = backend.model_copy(update={"export_dir": tmp_path / "exports"})
    post(client, event_json(), frame=scene(8))
    with export_lock(tmp_path / "exports" / "week-49"):  # as if another process were exporting there
        busy = client.post("/api/v1/exports", json={"name": "week-49"})
        assert busy.status_code == 409 and "another export" in busy.json()["detail"]
        with pytest.raises(ExportBusy, match="another export"):
            _export(backend, tmp_path / "exports" / "week-49")
        assert client.post("/api/v1/exports", json={"name": "week-50"}).status_code == 202  # another folder: fine
    assert client.post("/api/v1/exports", json={"name": "week-49"}).status_code == 202  # free again


def test_two_issues_on_one_fixed_camera_keep_their_frames(client, backend, tmp_path):
    """The same street behind two different issues hashes alike: only frames of the same
    order are near-duplicates of each other."""
    street = np.asarray(Image.open(io.BytesIO(scene(11))).convert("RGB")).copy()
    frames = []
    for x in (20, 220):  # a small object in a different place, the street unchanged
        img = street.copy()
        img[100:130, x:x + 30] = (250, 250, 250)
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "JPEG", quality=90)
        frames.append(buf.getvalue())
    from api.review_export import dhash

    assert bin(dhash(frames[0]) ^ dhash(frames[1])).count("1") <= 6  # alike to the hash
    a = post(client, event_json(bbox=(20, 100, 50, 130), camera="cam-9"), frame=frames[0]).json()["order_id"]
    b = post(client, event_json(bbox=(220, 100, 250, 130), camera="cam-9", issue_type="flooding"),
             frame=frames[1]).json()["order_id"]
    assert a != b
    for order in (a, b):
        assert client.post(f"/api/v1/orders/{order}/reject", json={"reason": "not_an_issue"}).is_success
    with Session(get_engine(backend.database_url)) as session:
        summary = export_reviews(session, make_store(backend), tmp_path / "out", progress=False)
    assert (summary.new_images, summary.duplicates_skipped) == (2, 0)


def _export(backend, out):
    with Session(get_engine(backend.database_url)) as session:
        return export_reviews(session, make_store(backend), out, progress=False)


def test_a_reopened_rejection_is_withdrawn_until_judged_again(client, backend, tmp_path):
    """A false alarm's frame stayed a hard negative (and kept its reason) after the rejection
    was reopened; and 'wrong type' without the right type made a real issue background."""
    reviewer = auth(make_key(backend, "reviewer"))
    add_worker(client, "W", on_duty=False)
    order = post(client, event_json(camera="cam-1"), frame=scene(21)).json()["order_id"]
    unnamed = post(client, event_json(camera="cam-2"), frame=scene(22)).json()["order_id"]
    assert client.post(f"/api/v1/orders/{order}/reject", json={"reason": "not_an_issue"}, headers=reviewer).is_success
    assert client.post(f"/api/v1/orders/{unnamed}/reject", json={"reason": "wrong_type"}, headers=reviewer).is_success
    out = tmp_path / "reviews"
    first = _export(backend, out)
    assert (first.new_images, first.unreviewed_orders) == (1, 1)  # the unnamed type is left out
    assert [r["order_id"] for r in _rows(out / "negatives.csv")] == [str(order)]

    assert client.post(f"/api/v1/orders/{order}/reopen", json={"note": "look again"}).is_success
    reopened = _export(backend, out)
    assert (reopened.withdrawn, reopened.total_images) == (1, 0)
    assert _rows(out / "negatives.csv") == [] and list((out / "images").iterdir()) == []

    assert client.post(f"/api/v1/orders/{order}/dispatch", json={"worker_id": 1}, headers=reviewer).is_success
    judged = _export(backend, out)
    (row,) = _rows(out / "provenance.csv")
    assert judged.new_images == 1 and (row["verdict"], row["reason"]) == ("confirmed", "")


def test_a_confirmation_before_a_rejection_taken_back_is_no_verdict(client, backend, tmp_path):
    """Dispatched by a reviewer, then rejected as a false alarm, then the rejection reopened:
    the old dispatch made the false alarm's frame a positive box."""
    reviewer = auth(make_key(backend, "reviewer"))
    worker = add_worker(client, "W", on_duty=False)
    order = post(client, event_json(camera="cam-1"), frame=scene(23)).json()["order_id"]
    assert client.post(f"/api/v1/orders/{order}/dispatch", json={"worker_id": worker}, headers=reviewer).is_success
    assert client.post(f"/api/v1/orders/{order}/reject", json={"reason": "not_an_issue"}, headers=reviewer).is_success
    assert client.post(f"/api/v1/orders/{order}/reopen", json={"note": "look again"}, headers=reviewer).is_success
    summary = _export(backend, tmp_path / "reviews")
    assert (summary.total_images, summary.unreviewed_orders) == (0, 1)
    assert _rows(tmp_path / "reviews" / "provenance.csv") == []


def test_every_frame_names_its_own_camera_and_citizen_orders_are_exported(client, backend, tmp_path):
    """Frames were taken from orders with a camera of their own only, each under the order's
    camera: a citizen's order that cameras joined was lost, a second camera's frame misnamed."""
    from tests.api.factories import BASE, metres_north, place_camera, seen_by

    reviewer = auth(make_key(backend, "reviewer"))
    add_worker(client, "W", on_duty=False)
    report = client.post("/api/v1/reports", data={"issue_type": "flooding", "lat": BASE[0], "lon": BASE[1]},
                         files={"photo": ("p.jpg", scene(30), "image/jpeg")})
    assert report.status_code == 201, report.text
    place_camera(client, "cam-1", *BASE)
    place_camera(client, "cam-2", *metres_north(10))
    joined = {post(client, seen_by(cam, issue_type="flooding"), frame=scene(31 + i)).json()["order_id"]
              for i, cam in enumerate(("cam-1", "cam-2"))}
    assert len(joined) == 1 and client.get(f"/api/v1/orders/{min(joined)}").json()["source"] == "citizen"
    assert client.post(f"/api/v1/orders/{joined.pop()}/dispatch", json={"worker_id": 1}, headers=reviewer).is_success
    summary = _export(backend, tmp_path / "reviews")
    assert summary.new_images == 2
    assert sorted(r["camera"] for r in _rows(tmp_path / "reviews" / "provenance.csv")) == ["cam-1", "cam-2"]


def test_a_frame_whose_object_is_gone_is_skipped_not_the_export(client, backend, tmp_path):
    orders = [post(client, event_json(camera=f"cam-{i}"), frame=scene(40 + i)).json()["order_id"] for i in (1, 2)]
    for order in orders:
        assert client.post(f"/api/v1/orders/{order}/reject", json={"reason": "not_an_issue"}).is_success
    store = make_store(backend)
    gone = client.get(f"/api/v1/orders/{orders[0]}").json()["evidence"][0]["object_key"]
    store.delete(gone)
    summary = _export(backend, tmp_path / "reviews")
    assert (summary.new_images, summary.missing_objects) == (1, 1)
    assert [r["order_id"] for r in _rows(tmp_path / "reviews" / "negatives.csv")] == [str(orders[1])]
