"""The closed loop: reported → dispatched → in_progress → resolved → closed, rejections,
reopenings, roles, and the audit log, on both backends."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from api.db import get_engine
from api.lifecycle import TRANSITIONS, allowed_targets
from api.models import OrderState
from tests.api.factories import (add_grid, add_worker, audit_count, auth, event_json, jpeg, make_key, order_row,
                                 post, set_order, stored_objects)

ACTIONS = {  # endpoint → (target state, a valid body)
    "dispatch": (OrderState.dispatched, {}),
    "start": (OrderState.in_progress, {}),
    "close": (OrderState.closed, {"rating": 4}),
    "reject": (OrderState.rejected, {"reason": "not_an_issue"}),
    "reopen": (OrderState.reopened, {"note": "still there"}),
}


def _act(client, order_id: int, action: str, body: dict | None = None, headers: dict | None = None):
    if action == "resolve":
        return client.post(f"/api/v1/orders/{order_id}/resolve", data=body or {"note": "cleared"}, headers=headers)
    return client.post(f"/api/v1/orders/{order_id}/{action}", json=ACTIONS[action][1] if body is None else body,
                       headers=headers)


def test_full_loop_with_worker_and_reviewer_keys(client, backend):
    add_grid(client, "g-1", supervisor="chief-1")
    worker_id = add_worker(client, "Li Wei", ["g-1"])
    worker, reviewer = auth(make_key(backend, "worker", worker_id)), auth(make_key(backend, "reviewer"))

    order_id = post(client, event_json()).json()["order_id"]  # camera cam-1 is in grid g-1
    order = client.get(f"/api/v1/orders/{order_id}", headers=reviewer).json()
    assert order["state"] == "dispatched" and order["worker_id"] == worker_id and order["grid_id"] == "g-1"
    assert not order["overdue"] and order["sla_due_at"]

    assert _act(client, order_id, "start", headers=worker).json()["state"] == "in_progress"
    missing_note = client.post(f"/api/v1/orders/{order_id}/resolve", headers=worker)
    assert missing_note.status_code == 422 and "note" in str(missing_note.json()["detail"])
    photo = jpeg((20, 200, 20))
    resp = client.post(f"/api/v1/orders/{order_id}/resolve", data={"note": "stall moved on"},
                       files={"photo": ("fixed.jpg", photo, "image/jpeg")}, headers=worker)
    assert resp.status_code == 200, resp.text
    resolved = resp.json()
    assert resolved["state"] == "resolved" and resolved["resolved_at"]
    (fix,) = [e for e in resolved["evidence"] if e["kind"] == "resolution"]
    assert fix["size"] == len(photo)

    bad_rating = _act(client, order_id, "close", {"rating": 6}, headers=reviewer)
    assert bad_rating.status_code == 422 and "rating" in str(bad_rating.json()["detail"])
    closed = _act(client, order_id, "close", {"rating": 5, "comment": "quick"}, headers=reviewer).json()
    assert closed["state"] == "closed" and closed["rating"] == 5 and closed["evaluation"] == "quick"

    moves = [(t["from_state"], t["to_state"], t["role"]) for t in closed["timeline"] if t["to_state"]]
    assert moves == [(None, "reported", "admin"), ("reported", "dispatched", "admin"),
                     ("dispatched", "in_progress", "worker"), ("in_progress", "resolved", "worker"),
                     ("resolved", "closed", "reviewer")]
    assert closed["timeline"][-1]["actor"] == "test-reviewer" and "quick" in closed["timeline"][-1]["note"]
    assert closed["timeline"][3]["note"] == "stall moved on"

    again = _act(client, order_id, "reopen", headers=reviewer)
    assert again.status_code == 409
    assert again.json()["state"] == "closed" and again.json()["allowed"] == []


def test_every_move_outside_the_table_is_409_listing_the_allowed_ones(client, backend):
    order_id = post(client, event_json()).json()["order_id"]
    for state in OrderState:
        for action in [*ACTIONS, "resolve"]:
            target = ACTIONS[action][0] if action in ACTIONS else OrderState.resolved
            if (state, target) in TRANSITIONS:
                continue
            set_order(backend, order_id, state=state)
            before = audit_count(backend, order_id)
            resp = _act(client, order_id, action)
            assert resp.status_code == 409, (state, action, resp.text)
            body = resp.json()
            assert body["state"] == state.value and body["allowed"] == [s.value for s in allowed_targets(state)]
            assert order_row(backend, order_id).state == state and audit_count(backend, order_id) == before


def test_roles_are_enforced_and_refusals_change_nothing(client, backend):
    add_grid(client, "g-1")
    mine, other = add_worker(client, "A", ["g-1"]), add_worker(client, "B", [], on_duty=False)
    worker, stranger = auth(make_key(backend, "worker", mine)), auth(make_key(backend, "worker", other))
    reviewer, edge = auth(make_key(backend, "reviewer")), auth(make_key(backend, "edge"))
    order_id = post(client, event_json()).json()["order_id"]
    assert order_row(backend, order_id).worker_id == mine
    before = audit_count(backend, order_id)

    assert _act(client, order_id, "reject", headers=worker).status_code == 403  # workers do not reject
    assert _act(client, order_id, "start", headers=reviewer).status_code == 403  # reviewers do not start
    assert _act(client, order_id, "start", headers=stranger).status_code == 403  # not their order
    assert _act(client, order_id, "reject", headers=edge).status_code == 403
    assert _act(client, order_id, "reject", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get(f"/api/v1/orders/{order_id}", headers=stranger).status_code == 403
    assert client.get("/api/v1/orders", headers=stranger).json()["count"] == 0  # workers see their own only
    assert client.get("/api/v1/orders", headers=worker).json()["count"] == 1
    assert order_row(backend, order_id).state == OrderState.dispatched and audit_count(backend, order_id) == before


def test_reject_needs_a_reason_from_the_list_and_the_false_alarm_is_not_raised_again(client, backend):
    reviewer = auth(make_key(backend, "reviewer"))
    order_id = post(client, event_json()).json()["order_id"]
    bad = _act(client, order_id, "reject", {"reason": "looks fine to me"}, headers=reviewer)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "reason"]
    rejected = _act(client, order_id, "reject", {"reason": "permitted", "note": "licensed market"}, headers=reviewer)
    assert rejected.json()["state"] == "rejected" and rejected.json()["reject_reason"] == "permitted"
    # The camera keeps seeing the same licensed stall: filed under the rejected order, not a new one.
    again = post(client, event_json()).json()
    assert again["order_id"] == order_id and again["new_order"] is False
    assert order_row(backend, order_id).state == OrderState.rejected and order_row(backend, order_id).event_count == 2
    # A reviewer can take the rejection back: the order is no longer a false alarm.
    back = _act(client, order_id, "reopen", {"note": "not licensed after all"}, headers=reviewer).json()
    assert back["state"] == "reopened" and back["reject_reason"] is None and back["corrected_type"] is None
    assert "permitted: licensed market" in [e["note"] for e in back["timeline"]]  # the verdict stays on record


def test_dispatch_with_nobody_on_duty_is_409_and_an_explicit_worker_works(client, backend):
    order_id = post(client, event_json()).json()["order_id"]
    order = order_row(backend, order_id)
    assert order.state == OrderState.reported and order.unassigned
    nobody = _act(client, order_id, "dispatch")
    assert nobody.status_code == 409 and "worker_id" in nobody.json()["detail"]
    unknown = _act(client, order_id, "dispatch", {"worker_id": 999})
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == ["body", "worker_id"]
    worker_id = add_worker(client, "Off", on_duty=False)
    done = _act(client, order_id, "dispatch", {"worker_id": worker_id}).json()
    assert done["state"] == "dispatched" and done["worker_id"] == worker_id and done["unassigned"] is False


def test_resolution_photo_must_be_an_image_and_nothing_is_stored_otherwise(client, backend):
    worker_id = add_worker(client, "W", on_duty=False)
    order_id = post(client, event_json()).json()["order_id"]
    set_order(backend, order_id, state=OrderState.in_progress, worker_id=worker_id)
    objects = stored_objects(backend)
    resp = client.post(f"/api/v1/orders/{order_id}/resolve", data={"note": "done"},
                       files={"photo": ("x.jpg", b"not an image", "image/jpeg")})
    assert resp.status_code == 422 and resp.json()["detail"][0]["loc"] == ["body", "photo"]
    assert order_row(backend, order_id).state == OrderState.in_progress and stored_objects(backend) == objects


def test_audit_log_is_append_only_in_the_database(client, backend):
    order_id = post(client, event_json()).json()["order_id"]
    assert audit_count(backend, order_id) >= 1
    for sql in ("UPDATE audit_entry SET note = 'forged'", "DELETE FROM audit_entry"):
        with Session(get_engine(backend.database_url)) as s:
            with pytest.raises(DBAPIError, match="append-only"):
                s.execute(text(sql))
                s.commit()
    assert audit_count(backend, order_id) >= 1


def test_comments_bulk_reject_and_cursor_paging(client, backend):
    ids = [post(client, event_json(bbox=(20 * i, 0, 20 * i + 10, 10))).json()["order_id"] for i in range(7)]
    reviewer = auth(make_key(backend, "reviewer"))
    made = client.post(f"/api/v1/orders/{ids[0]}/comments", json={"text": "looks like a van"}, headers=reviewer)
    assert made.status_code == 201 and made.json()["author"] == "test-reviewer"
    assert client.post(f"/api/v1/orders/{ids[0]}/comments", json={"text": ""}).status_code == 422
    assert client.post("/api/v1/orders/999/comments", json={"text": "x"}).status_code == 404
    assert [c["text"] for c in client.get(f"/api/v1/orders/{ids[0]}").json()["comments"]] == ["looks like a van"]

    set_order(backend, ids[1], state=OrderState.closed)
    bulk = client.post("/api/v1/orders/bulk-reject", json={"order_ids": [ids[0], ids[1], 999], "reason": "duplicate"},
                       headers=reviewer).json()
    assert bulk["rejected"] == [ids[0]]
    assert {(f["order_id"], f["status"]) for f in bulk["failed"]} == {(ids[1], 409), (999, 404)}
    assert order_row(backend, ids[0]).state == OrderState.rejected

    seen, cursor = [], None
    while True:
        page = client.get("/api/v1/orders", params={"limit": 3, "sort": "oldest", **({"cursor": cursor} if cursor else {})}).json()
        seen += [o["id"] for o in page["data"]]
        assert page["count"] >= 7
        cursor = page["next_cursor"]
        if cursor is None:
            break
        post(client, event_json(bbox=(300, 200, 310, 210), camera="cam-9"))  # arrivals do not shift pages
    assert seen[:7] == ids and len(seen) == len(set(seen))
    updated = client.get("/api/v1/orders", params={"sort": "updated", "limit": 2}).json()
    second = client.get("/api/v1/orders", params={"sort": "updated", "limit": 2, "cursor": updated["next_cursor"]}).json()
    assert not {o["id"] for o in updated["data"]} & {o["id"] for o in second["data"]}
    assert client.get("/api/v1/orders", params={"cursor": "garbage"}).status_code == 422
    assert client.get("/api/v1/orders", params={"model_version": "1"}).json()["count"] >= 7
    assert client.get("/api/v1/orders", params={"model_version": "9"}).json()["count"] == 0
    # as the page and the dashboard name a model: name:version
    everything = client.get("/api/v1/orders", params={"model_version": "1"}).json()["count"]
    assert client.get("/api/v1/orders", params={"model_version": "test:1"}).json()["count"] == everything
    assert client.get("/api/v1/orders", params={"model_version": "other:1"}).json()["count"] == 0
