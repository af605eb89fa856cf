"""GET /api/v1/stats: the dashboard figures, checked against orders with known histories."""

from __future__ import annotations

from datetime import datetime, timedelta

from api.models import OrderState, RejectReason
from api.models import utcnow
from tests.api.factories import add_grid, add_worker, auth, event_json, jpeg, make_key, order_row, post, set_order


def test_stats_count_states_times_sla_and_false_alarms(client, backend):
    a = post(client, event_json(camera="cam-1")).json()["order_id"]
    b = post(client, event_json(camera="cam-1", issue_type="flooding")).json()["order_id"]
    c = post(client, event_json(camera="cam-2", model={"name": "m", "version": "2"})).json()["order_id"]
    detail = client.get(f"/api/v1/orders/{a}").json()
    created = datetime.fromisoformat(detail["created_at"])
    set_order(backend, a, state=OrderState.resolved, dispatched_at=created + timedelta(minutes=10),
              resolved_at=created + timedelta(hours=1))  # clutter SLA 24 h: met
    set_order(backend, b, state=OrderState.resolved, dispatched_at=created + timedelta(minutes=30),
              resolved_at=created + timedelta(hours=3))  # flooding SLA 2 h: missed
    set_order(backend, c, state=OrderState.rejected, reject_reason=RejectReason.not_an_issue)

    stats = client.get("/api/v1/stats", headers=auth(make_key(backend, "reviewer"))).json()
    assert stats["orders"] == 3
    assert stats["by_type_and_state"]["clutter"]["resolved"] == 1
    assert stats["by_type_and_state"]["clutter"]["rejected"] == 1
    assert stats["by_type_and_state"]["flooding"]["resolved"] == 1
    assert abs(stats["mean_time_to_dispatch_s"] - 20 * 60) < 2
    assert abs(stats["mean_time_to_resolve_s"] - 2 * 3600) < 2
    assert (stats["sla_met"], stats["sla_missed"], stats["sla_compliance"]) == (1, 1, 0.5)
    cams = {r["key"]: r for r in stats["per_camera"]}
    assert cams["cam-2"]["false_alarm_rate"] == 1.0 and cams["cam-1"]["false_alarm_rate"] == 0.0
    versions = {r["key"]: r for r in stats["per_model_version"]}
    assert versions["m:2"]["rejected"] == 1 and versions["test:1"]["confirmed_rate"] == 1.0

    flooding = client.get("/api/v1/stats", params={"issue_type": "flooding"}).json()
    assert flooding["orders"] == 1
    later = client.get("/api/v1/stats", params={"since": "2999-01-01T00:00:00Z"}).json()
    assert later["orders"] == 0 and later["sla_compliance"] is None
    assert client.get("/api/v1/stats", headers=auth(make_key(backend, "edge"))).status_code == 403
    assert client.get("/api/v1/stats", params={"since": "yesterday"}).status_code == 422


def test_duplicates_permitted_and_elsewhere_are_rejected_but_not_false_alarms(client, backend):
    """Only 'not an issue', 'wrong type' and 'other' say the model was wrong."""
    reasons = ["not_an_issue", "duplicate", "permitted", "outside_jurisdiction"]
    for i, reason in enumerate(reasons):
        order = post(client, event_json(camera="cam-x", bbox=(10 + 300 * i, 10, 60 + 300 * i, 60), frame_width=1280),
                     frame=jpeg(size=(1280, 240))).json()["order_id"]
        set_order(backend, order, state=OrderState.rejected, reject_reason=RejectReason(reason))
    row = {r["key"]: r for r in client.get("/api/v1/stats").json()["per_camera"]}["cam-x"]
    assert (row["orders"], row["rejected"], row["false_alarms"]) == (4, 4, 1)
    assert row["false_alarm_rate"] == 0.25 and row["confirmed_rate"] == 0.75


def test_rates_count_what_people_judged_and_overdue_now_is_about_today(client, backend):
    """Automatic dispatch made every new order "acted on" and "confirmed"; the first dispatch
    time was overwritten by a re-dispatch; overdue orders older than the period dropped out."""
    add_grid(client, "g-1")
    worker = add_worker(client, "W", ["g-1"])
    worker_key = auth(make_key(backend, "worker", worker))
    orders = [post(client, event_json(camera="cam-5", bbox=(i * 60, 0, i * 60 + 50, 50))).json()["order_id"]
              for i in range(4)]
    assert {order_row(backend, o).state for o in orders} == {OrderState.dispatched}  # by the system
    assert client.post(f"/api/v1/orders/{orders[0]}/reject", json={"reason": "not_an_issue"}).is_success
    (row,) = client.get("/api/v1/stats").json()["per_camera"]
    assert (row["orders"], row["false_alarm_rate"], row["confirmed_rate"]) == (4, 1.0, 0.0)  # one judged: false
    assert client.post(f"/api/v1/orders/{orders[1]}/start", json={}, headers=worker_key).is_success
    (row,) = client.get("/api/v1/stats").json()["per_camera"]
    assert (row["false_alarm_rate"], row["confirmed_rate"]) == (0.5, 0.5)  # the worker's start is a person's word

    first_dispatch = order_row(backend, orders[1]).dispatched_at
    assert client.post(f"/api/v1/orders/{orders[1]}/resolve", data={"note": "gone"}, headers=worker_key).is_success
    assert client.post(f"/api/v1/orders/{orders[1]}/reopen", json={"note": "back"}).is_success
    assert client.post(f"/api/v1/orders/{orders[1]}/dispatch", json={"worker_id": worker}).is_success
    assert order_row(backend, orders[1]).dispatched_at == first_dispatch

    set_order(backend, orders[2], created_at=utcnow() - timedelta(days=40), sla_due_at=utcnow() - timedelta(days=39))
    week = client.get("/api/v1/stats", params={"since": (utcnow() - timedelta(days=7)).isoformat()}).json()
    assert week["orders"] == 3 and week["overdue_now"] == 1  # reported before the week, late now
