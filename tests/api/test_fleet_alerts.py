"""Blind cameras and silent boxes notify the grid's supervisor; a camera back clears its alert."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlmodel import Session

from api.auth import SYSTEM
from api.db import get_engine
from api.fleet_alerts import sweep_fleet
from api.fleet_schemas import HeartbeatIn
from api.heartbeats import record_heartbeat
from api.settings import Settings
from tests.api.factories import add_grid
from tests.api.fleet_helpers import camera, heartbeat, notifications

T0 = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=1)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def beat_at(settings: Settings, minutes: float, *cameras: dict, interval_s: float = 600) -> dict:
    """A heartbeat at T0 + minutes (every 10 min by default, so that the box is not silent in between)."""
    with Session(get_engine(settings.database_url)) as s:
        return record_heartbeat(s, SYSTEM, "box-1", HeartbeatIn.model_validate(heartbeat(*cameras, interval_s=interval_s)),
                                now=at(minutes)).model_dump()


def sweep_at(settings: Settings, minutes: float) -> dict[str, int]:
    with Session(get_engine(settings.database_url)) as s:
        return sweep_fleet(s, settings, now=at(minutes))


def test_a_camera_down_for_the_offline_time_alerts_once_and_clears_when_back(client, backend):
    add_grid(client, "g-1", supervisor="wang")
    beat_at(backend, 0, camera("cam-1", grid_id="g-1"), camera("cam-2", grid_id="g-1"))
    beat_at(backend, 1, camera("cam-1", "reconnecting"), camera("cam-2"))
    beat_at(backend, 2, camera("cam-1", "stalled"), camera("cam-2"))
    beat_at(backend, 8, camera("cam-1", "reconnecting"), camera("cam-2"))  # still down: one outage
    assert sweep_at(backend, 15.5)["cameras_blind"] == 0  # 14.5 min down
    assert sweep_at(backend, 16.5)["cameras_blind"] == 1  # 15.5 min since it left streaming at minute 1
    assert sweep_at(backend, 30)["cameras_blind"] == 0  # once
    alerts = notifications(backend, "camera_offline")
    assert [(n.camera, n.supervisor, n.box_id, n.order_id) for n in alerts] == [("cam-1", "wang", "box-1", None)]
    assert "not streaming for 16 min" in alerts[0].message
    assert [c["name"] for c in client.get("/api/v1/cameras", params={"alerting": True}).json()] == ["cam-1"]
    shown = client.get("/api/v1/notifications").json()[0]
    assert (shown["kind"], shown["camera"], shown["order_id"]) == ("camera_offline", "cam-1", None)

    beat_at(backend, 31, camera("cam-1"), camera("cam-2"))
    back = notifications(backend, "camera_back")
    assert [(n.camera, n.supervisor) for n in back] == [("cam-1", "wang")]
    assert client.get("/api/v1/cameras", params={"alerting": True}).json() == []


def test_disabled_cameras_never_alert(client, backend):
    beat_at(backend, 0, camera("cam-1", "disabled"))
    for minute in range(1, 40, 1):
        beat_at(backend, minute, camera("cam-1", "disabled"))
    assert sweep_at(backend, 40)["cameras_blind"] == 0
    assert notifications(backend) == []


def test_a_silent_box_alerts_its_supervisors_and_its_cameras_go_offline(client, backend):
    add_grid(client, "g-1", supervisor="wang")
    add_grid(client, "g-2", supervisor="li")
    beat_at(backend, 0, camera("cam-1", grid_id="g-1"), camera("cam-2", grid_id="g-2"), camera("cam-3", "disabled"),
            interval_s=30)
    assert sweep_at(backend, 1.4)["boxes_silent"] == 0  # 84 s: under three 30 s heartbeats
    assert sweep_at(backend, 1.6)["boxes_silent"] == 1
    alerts = notifications(backend, "box_offline")
    assert sorted((n.supervisor, n.box_id) for n in alerts) == [("li", "box-1"), ("wang", "box-1")]
    cams = {c["name"]: c for c in client.get("/api/v1/cameras").json()}
    assert {n: c["state"] for n, c in cams.items()} == {"cam-1": "offline", "cam-2": "offline", "cam-3": "disabled"}
    # Dated from the box's last heartbeat: the silence counts against the online rate.
    assert datetime.fromisoformat(cams["cam-1"]["state_since"]) == at(0)
    assert client.get("/api/v1/boxes").json()[0]["online"] is False
    assert sweep_at(backend, 30) == {"boxes_silent": 0, "cameras_blind": 0, "cameras_back": 0}  # no alert per camera

    assert beat_at(backend, 31, camera("cam-1"), camera("cam-2"), camera("cam-3", "disabled"),
                   interval_s=30)["changes"] == 2
    assert [n.box_id for n in notifications(backend, "box_back")] == ["box-1"]
    assert {c["name"]: c["state"] for c in client.get("/api/v1/cameras").json()}["cam-1"] == "streaming"
    history = client.get("/api/v1/cameras/cam-1/states").json()
    assert [(h["from_state"], h["to_state"]) for h in history] == [
        ("offline", "streaming"), ("streaming", "offline"), (None, "streaming")]


def test_a_camera_back_is_cleared_by_the_sweep_if_its_heartbeat_raced_the_alert(client, backend):
    from sqlalchemy import update

    from api.fleet_models import CameraStatus

    beat_at(backend, 0, camera("cam-1"))
    with Session(get_engine(backend.database_url)) as s:  # as if the alert won after the heartbeat's read
        s.execute(update(CameraStatus).values(offline_alert_at=at(0)))
        s.commit()
    assert sweep_at(backend, 0.5)["cameras_back"] == 1
    assert [n.camera for n in notifications(backend, "camera_back")] == ["cam-1"]


def test_the_online_rate_is_weighted_by_time_per_grid_and_day(client, backend):
    midnight = datetime.combine(T0.date() - timedelta(days=2), datetime.min.time(), timezone.utc)
    hours = lambda h: (midnight - T0).total_seconds() / 60 + h * 60  # noqa: E731  (minutes from T0)
    g1 = dict(grid_id="g-1")
    beat_at(backend, hours(0), camera("cam-1", **g1), camera("cam-2", "disabled", **g1))
    beat_at(backend, hours(6), camera("cam-1", "stalled", **g1), camera("cam-2", "disabled", **g1))
    beat_at(backend, hours(12), camera("cam-1", **g1), camera("cam-2", "disabled", **g1), camera("cam-3", grid_id="g-2"))
    beat_at(backend, hours(30), camera("cam-1", **g1), camera("cam-2", "disabled", **g1),
            camera("cam-3", "failed", grid_id="g-2"))
    stats = client.get("/api/v1/stats", params={"since": midnight.isoformat(),
                                                "until": (midnight + timedelta(hours=36)).isoformat()}).json()
    rows = {(r["grid_id"], r["day"]): (r["online_rate"], r["camera_hours"]) for r in stats["camera_online_rate"]}
    day1, day2 = midnight.date().isoformat(), (midnight.date() + timedelta(days=1)).isoformat()
    assert rows == {
        ("g-1", day1): (0.75, 24.0),  # 6 h stalled of 24 (the disabled camera counts for nothing)
        ("g-2", day1): (1.0, 12.0),  # known from noon
        ("g-1", day2): (1.0, 12.0),
        ("g-2", day2): (0.5, 12.0),  # failed from 06:00
    }
    only_g2 = client.get("/api/v1/stats", params={"since": midnight.isoformat(), "grid_id": "g-2",
                                                  "until": (midnight + timedelta(hours=36)).isoformat()}).json()
    assert {r["grid_id"] for r in only_g2["camera_online_rate"]} == {"g-2"}
