"""Dispatch to grid workers, SLAs and escalation, clearing, notifications, worker self-service."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session

from api.db import get_engine
from api.dispatch import sweep
from api.models import OrderState, as_utc, utcnow
from tests.api.factories import (add_grid, add_worker, auth, event_json, make_key, order_row, place_camera, post,
                                 set_order)


def test_grid_worker_least_busy_then_nearest_then_unassigned(client, backend):
    add_grid(client, "g-1")
    add_grid(client, "g-2", polygon=[[31.0, 121.0], [31.0, 121.9], [31.9, 121.9], [31.9, 121.0]])
    a, b = add_worker(client, "A", ["g-1"]), add_worker(client, "B", ["g-1"])
    add_worker(client, "Off duty", ["g-1"], on_duty=False)
    first = post(client, event_json(bbox=(0, 0, 50, 50))).json()["order_id"]
    second = post(client, event_json(bbox=(200, 100, 250, 150))).json()["order_id"]
    assert {order_row(backend, first).worker_id, order_row(backend, second).worker_id} == {a, b}

    # No grid on the camera event → the grid whose outline holds the camera; nobody there →
    # the nearest on-duty worker.
    near = add_worker(client, "Near", [], lat=31.211, lon=121.4)
    add_worker(client, "Far", [], lat=35.0, lon=121.4)
    ev = event_json(camera="cam-1", issue_type="flooding")
    ev["camera"].pop("grid_id")
    place_camera(client, "cam-1", 31.21, 121.4, grid_id=None)
    order = order_row(backend, post(client, ev).json()["order_id"])
    assert order.grid_id == "g-2" and order.worker_id == near and order.state == OrderState.dispatched

    # Nobody on duty at all → stays reported, flagged unassigned.
    for wid in (a, b, near):
        assert client.patch(f"/api/v1/workers/{wid}", json={"on_duty": False}).status_code == 200
    client.patch(f"/api/v1/workers/{near + 1}", json={"on_duty": False})
    lone = order_row(backend, post(client, event_json(camera="cam-7")).json()["order_id"])
    assert lone.state == OrderState.reported and lone.unassigned and lone.worker_id is None
    assert client.get("/api/v1/orders", params={"unassigned": True}).json()["count"] == 1

    notes = client.get("/api/v1/notifications").json()
    assert {n["kind"] for n in notes} == {"dispatched"} and len(notes) == 3
    worker_view = client.get("/api/v1/notifications", headers=auth(make_key(backend, "worker", a))).json()
    assert all(n["worker_id"] == a for n in worker_view) and len(worker_view) == 1


def test_sla_overdue_is_listed_and_escalated_exactly_once(client, backend):
    add_grid(client, "g-1", supervisor="chief Zhang")
    flood = post(client, event_json(issue_type="flooding")).json()["order_id"]  # SLA 2 h
    litter = post(client, event_json(issue_type="clutter", camera="cam-2")).json()["order_id"]  # SLA 24 h
    order = order_row(backend, flood)
    assert order.sla_due_at is not None
    assert abs((order.sla_due_at - order.created_at).total_seconds() - 2 * 3600) < 1

    set_order(backend, flood, sla_due_at=utcnow() - timedelta(minutes=1))
    overdue = client.get("/api/v1/orders/overdue").json()
    assert [o["id"] for o in overdue["data"]] == [flood] and overdue["data"][0]["overdue"] is True
    assert client.get("/api/v1/orders", params={"overdue": False}).json()["data"][0]["id"] == litter

    assert client.post("/api/v1/sweep").json()["escalated"] == 1
    assert client.post("/api/v1/sweep").json()["escalated"] == 0  # once only
    with Session(get_engine(backend.database_url)) as s:
        assert sweep(s, backend, utcnow() + timedelta(hours=1))["escalated"] == 0
    notes = [n for n in client.get("/api/v1/notifications").json() if n["kind"] == "overdue"]
    assert [(n["order_id"], n["supervisor"]) for n in notes] == [(flood, "chief Zhang")]
    timeline = client.get(f"/api/v1/orders/{flood}").json()["timeline"]
    assert [t["action"] for t in timeline].count("escalate") == 1
    # A resolved order is not overdue, whatever its deadline.
    set_order(backend, flood, state=OrderState.resolved, sla_due_at=order.sla_due_at)
    assert client.get("/api/v1/orders/overdue").json()["count"] == 0

    # Reopened, it has a new 2 h deadline from now, and is escalated again when that passes.
    assert client.post(f"/api/v1/orders/{flood}/reopen", json={"note": "back"}).json()["state"] == "reopened"
    due = as_utc(order_row(backend, flood).sla_due_at)
    assert abs((due - utcnow()).total_seconds() - 2 * 3600) < 60
    assert client.post("/api/v1/sweep").json()["escalated"] == 0
    set_order(backend, flood, sla_due_at=utcnow() - timedelta(minutes=1))
    assert client.post("/api/v1/sweep").json()["escalated"] == 1
    # and again: still 2 h from the new reopening, not the sum of the cycles so far
    set_order(backend, flood, state=OrderState.resolved, sla_due_at=utcnow() + timedelta(hours=2),
              created_at=utcnow() - timedelta(hours=10))  # reported long before the last reopening
    assert client.post(f"/api/v1/orders/{flood}/reopen", json={"note": "back again"}).json()["state"] == "reopened"
    assert abs((as_utc(order_row(backend, flood).sla_due_at) - utcnow()).total_seconds() - 2 * 3600) < 60


def test_unseen_orders_are_flagged_cleared_by_camera_not_closed(client, backend):
    order_id = post(client, event_json(issue_type="street_vending")).json()["order_id"]  # clear after 20 min
    with Session(get_engine(backend.database_url)) as s:
        assert sweep(s, backend, utcnow() + timedelta(minutes=10))["cleared"] == 0
        assert sweep(s, backend, utcnow() + timedelta(minutes=25))["cleared"] == 1
    order = order_row(backend, order_id)
    assert order.cleared_by_camera and order.state == OrderState.reported
    post(client, event_json(issue_type="street_vending"))  # the stall is back
    assert not order_row(backend, order_id).cleared_by_camera


def test_workers_may_change_only_their_own_duty_and_position(client, backend):
    add_grid(client, "g-1")
    me, other = add_worker(client, "Me", ["g-1"]), add_worker(client, "Other", ["g-1"])
    key = auth(make_key(backend, "worker", me))
    ok = client.patch(f"/api/v1/workers/{me}", json={"on_duty": False, "lat": 31.2, "lon": 121.4}, headers=key)
    assert ok.status_code == 200 and ok.json()["on_duty"] is False
    assert client.patch(f"/api/v1/workers/{other}", json={"on_duty": False}, headers=key).status_code == 403
    assert client.patch(f"/api/v1/workers/{me}", json={"grid_ids": []}, headers=key).status_code == 403
    assert client.post("/api/v1/workers", json={"name": "x"}, headers=key).status_code == 403
    bad_grid = client.post("/api/v1/workers", json={"name": "x", "grid_ids": ["nope"]})
    assert bad_grid.status_code == 422 and bad_grid.json()["detail"][0]["loc"] == ["body", "grid_ids"]
    assert client.patch("/api/v1/workers/999", json={"on_duty": True}).status_code == 404
    assert client.post("/api/v1/grids", json={"id": "g-1"}).status_code == 409
    assert client.post("/api/v1/grids", json={"id": "bad id!"}).status_code == 422


def test_a_grid_can_be_changed_and_new_escalations_go_to_its_new_supervisor(client, backend):
    add_grid(client, "g-1", supervisor="chief Zhang")
    changed = client.patch("/api/v1/grids/g-1", json={"supervisor": "chief Li", "cameras": ["cam-1"]})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["supervisor"], changed.json()["cameras"]) == ("chief Li", ["cam-1"])
    assert client.get("/api/v1/grids").json()[0]["supervisor"] == "chief Li"
    flood = post(client, event_json(issue_type="flooding")).json()["order_id"]
    set_order(backend, flood, sla_due_at=utcnow() - timedelta(minutes=1))
    assert client.post("/api/v1/sweep").json()["escalated"] == 1
    notes = [n for n in client.get("/api/v1/notifications").json() if n["kind"] == "overdue"]
    assert [n["supervisor"] for n in notes] == ["chief Li"]

    bad = client.patch("/api/v1/grids/g-1", json={"polygon": [[31.2, 121.4], [95, 121.5], [31.3, 121.5]]})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "polygon", "1"]
    assert client.patch("/api/v1/grids/g-1", json={"cameras": None}).status_code == 422
    assert client.patch("/api/v1/grids/nope", json={"name": "x"}).status_code == 404
    reviewer = auth(make_key(backend, "reviewer"))
    assert client.patch("/api/v1/grids/g-1", json={"name": "x"}, headers=reviewer).status_code == 403
    assert client.get("/api/v1/grids").json()[0]["supervisor"] == "chief Li"  # nothing changed by the refusals
