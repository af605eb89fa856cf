"""One order per real issue across cameras, citizen reports and time: distance dedup,
ground-plane mapping, recurrence after resolution."""

from __future__ import annotations

from datetime import timedelta

import pytest

import math
import random

from sqlmodel import Session, select

from api.db import get_engine
from api.location import bounding_box, distance_m, pixel_to_latlon, point_in_polygon
from api.models import Camera, OrderState, utcnow
from tests.api.factories import BASE, add_grid, event_json, jpeg, metres_north, order_row, place_camera, post, seen_by, set_order

def _report(client, lat: float, lon: float, issue_type: str = "flooding"):
    return client.post("/api/v1/reports", data={"issue_type": issue_type, "lat": lat, "lon": lon, "text": "water"},
                       files={"photo": ("p.jpg", jpeg(), "image/jpeg")})


def test_distance_and_mapping_helpers():
    assert distance_m(*BASE, *metres_north(100)) == pytest.approx(100, rel=1e-3)
    # Four road corners: pixels of a 1000 × 500 frame onto a 100 m × 50 m patch of street.
    points = [[0, 0, *metres_north(50)], [1000, 0, metres_north(50)[0], BASE[1] + 0.001],
              [0, 500, *BASE], [1000, 500, BASE[0], BASE[1] + 0.001]]
    lat, lon = pixel_to_latlon(points, 500, 250)
    assert lat == pytest.approx(metres_north(25)[0], abs=1e-7) and lon == pytest.approx(BASE[1] + 0.0005, abs=1e-7)
    square = [[0, 0], [0, 1], [1, 1], [1, 0]]
    assert point_in_polygon(0.5, 0.5, square) and not point_in_polygon(1.5, 0.5, square)


@pytest.mark.parametrize("lat", [0.0, 31.23, -33.9, 64.1, 78.2, 89.99])
def test_bounding_box_holds_every_point_within_the_radius(lat):
    # The SQL filter must never drop an order the exact distance rule would join.
    rng = random.Random(lat)
    radius = 60.0
    lat_lo, lat_hi, lon_lo, lon_hi = bounding_box(lat, 121.47, radius)
    for _ in range(2000):
        bearing, d = rng.uniform(0, 2 * math.pi), radius * math.sqrt(rng.random())
        dlat = d * math.cos(bearing) / 111_195
        dlon = d * math.sin(bearing) / (111_195 * max(1e-9, math.cos(math.radians(lat + dlat))))
        p = (lat + dlat, 121.47 + dlon)
        if abs(p[0]) > 90 or distance_m(lat, 121.47, *p) > radius:
            continue
        assert lat_lo <= p[0] <= lat_hi and lon_lo <= p[1] <= lon_hi, p
    # ...and it is a filter: at mid latitudes it is a few radii wide, not kilometres.
    if abs(lat) < 70:
        assert distance_m(lat, 121.47, lat_hi, 121.47) < 2 * radius
        assert distance_m(lat, 121.47, lat, lon_hi) < 2 * radius


def test_two_cameras_seeing_one_flood_make_one_order(client, backend):
    place_camera(client, "cam-1", *BASE)
    place_camera(client, "cam-2", *metres_north(30))  # flooding joins within 60 m
    place_camera(client, "cam-3", *metres_north(500))
    first = post(client, seen_by("cam-1", issue_type="flooding")).json()
    second = post(client, seen_by("cam-2", issue_type="flooding", bbox=(0, 0, 50, 50))).json()
    far = post(client, seen_by("cam-3", issue_type="flooding")).json()
    assert second["order_id"] == first["order_id"] and second["new_order"] is False
    assert far["new_order"] is True
    # A stall is smaller: 30 m apart is two stalls (street_vending radius 20 m).
    a = post(client, seen_by("cam-1", issue_type="street_vending")).json()
    b = post(client, seen_by("cam-2", issue_type="street_vending")).json()
    assert a["order_id"] != b["order_id"]


def test_ground_points_place_the_issue_not_the_camera(client, backend):
    """Cameras 200 m apart looking at the same corner: their boxes map to the same spot."""
    corner = metres_north(100)
    for name, cam_pos in (("cam-1", BASE), ("cam-2", metres_north(200))):
        # Each camera's whole 320 × 240 frame covers the 40 m × 40 m square around the corner.
        half = 20 / 111_195
        points = [[0, 0, corner[0] + half, corner[1] - half], [320, 0, corner[0] + half, corner[1] + half],
                  [0, 240, corner[0] - half, corner[1] - half], [320, 240, corner[0] - half, corner[1] + half]]
        place_camera(client, name, *cam_pos, ground_points=points)
    one = post(client, seen_by("cam-1", issue_type="clutter", bbox=(150, 100, 170, 120))).json()
    two = post(client, seen_by("cam-2", issue_type="clutter", bbox=(140, 90, 165, 125))).json()
    assert two["order_id"] == one["order_id"]
    order = order_row(backend, one["order_id"])
    assert distance_m(order.lat, order.lon, *corner) < 5


def perspective_points(near_lat: float, lon: float) -> list[list[float]]:
    """A 320 × 240 camera looking down a 10 m-wide road: near corners at the bottom of the frame,
    corners 40 m further up at y = 140; the road's edges meet at the horizon, y = 40."""
    far, width = near_lat + 40 / 111_195, 10 / 96_000
    return [[20, 240, near_lat, lon], [300, 240, near_lat, lon + width],
            [110, 140, far, lon], [210, 140, far, lon + width]]


def test_a_pixel_at_or_beyond_the_horizon_maps_to_no_place():
    points = perspective_points(*BASE)
    below = pixel_to_latlon(points, 160, 120)  # between the far corners and the horizon: further up the road
    assert below is not None and below[0] > points[2][2]
    # at the horizon the map runs off to infinity; above it, it comes back mirrored behind the camera
    assert pixel_to_latlon(points, 160, 40) is None
    assert pixel_to_latlon(points, 160, 20) is None


def test_a_box_standing_at_the_horizon_is_placed_at_the_camera(client, backend):
    place_camera(client, "cam-1", *BASE, ground_points=perspective_points(*metres_north(30)))
    order = order_row(backend, post(client, seen_by("cam-1", bbox=(150, 10, 170, 40))).json()["order_id"])
    assert (order.lat, order.lon) == pytest.approx(BASE)


def camera_row(settings, name: str) -> Camera:
    with Session(get_engine(settings.database_url)) as s:
        return s.exec(select(Camera).where(Camera.name == name)).one()


def test_an_admin_placement_is_not_moved_by_events_but_an_edge_position_is(client, backend):
    """Events carry the edge config's position and grid: they keep an unplaced camera current,
    and after PUT /api/v1/cameras the API's placement wins (it also holds the ground points)."""
    first = post(client, event_json(camera="cam-1")).json()  # cam-1 at the edge config's place, grid g-1
    moved = event_json(camera="cam-1", bbox=(10, 10, 40, 40))
    moved["camera"].update(lat=BASE[0] + 0.01, lon=BASE[1] + 0.01, grid_id="g-7")
    post(client, moved)
    camera = camera_row(backend, "cam-1")
    assert (camera.lat, camera.lon, camera.grid_id) == (BASE[0] + 0.01, BASE[1] + 0.01, "g-7")
    assert camera.placed_at is None

    add_grid(client, "g-2")  # an admin places cameras only in grids that exist
    place_camera(client, "cam-1", *BASE, grid_id="g-2")
    again = event_json(camera="cam-1", bbox=(200, 150, 260, 200))
    again["camera"].update(lat=BASE[0] + 0.02, lon=BASE[1] + 0.02, grid_id="g-9")
    order = order_row(backend, post(client, again).json()["order_id"])
    camera = camera_row(backend, "cam-1")
    assert (camera.lat, camera.lon, camera.grid_id) == (*BASE, "g-2") and camera.placed_at is not None
    assert (order.lat, order.lon) == pytest.approx(BASE) and order.grid_id == "g-2"
    assert first["order_id"] != order.id


def test_bad_ground_points_are_refused(client):
    resp = client.put("/api/v1/cameras/cam-1", json={"ground_points": [[0, 0, 1, 1], [1, 1, 2, 2]]})
    assert resp.status_code == 422 and "ground_points" in str(resp.json()["detail"])
    line = [[i, i, 30 + i * 1e-4, 120 + i * 1e-4] for i in range(4)]
    assert client.put("/api/v1/cameras/cam-1", json={"ground_points": line}).status_code == 422


def test_citizen_report_joins_the_camera_order_nearby(client, backend):
    place_camera(client, "cam-1", *BASE)
    order_id = post(client, seen_by("cam-1", issue_type="flooding")).json()["order_id"]
    near = _report(client, *metres_north(40))
    assert near.status_code == 201, near.text
    tracking = near.json()["tracking_id"]
    detail = client.get(f"/api/v1/orders/{order_id}").json()
    assert [r["tracking_id"] for r in detail["reports"]] == [tracking]
    assert "report" in {e["kind"] for e in detail["evidence"]}
    far = _report(client, *metres_north(400)).json()
    far_progress = client.get(f"/api/v1/reports/{far['tracking_id']}").json()
    assert far_progress["state"] == "reported"
    citizen_orders = client.get("/api/v1/orders", params={"source": "citizen"}).json()
    assert citizen_orders["count"] == 1 and citizen_orders["data"][0]["camera"] is None
    assert citizen_orders["data"][0]["bbox"] is None and citizen_orders["data"][0]["snapshot_url"]


def test_recurrence_after_closing_is_a_new_linked_order(client, backend):
    first = post(client, event_json()).json()["order_id"]
    set_order(backend, first, state=OrderState.closed, closed_at=utcnow(), resolved_at=utcnow())
    again = post(client, event_json()).json()
    assert again["new_order"] is True
    assert order_row(backend, again["order_id"]).recurrence_of == first
    timeline = client.get(f"/api/v1/orders/{again['order_id']}").json()["timeline"]
    assert f"recurrence of order {first}" in timeline[0]["note"]

    # Past the cooldown (72 h for clutter) it is just a new order.
    old = utcnow() - timedelta(hours=100)
    for order_id in (first, again["order_id"]):
        set_order(backend, order_id, state=OrderState.closed, closed_at=old, resolved_at=old, updated_at=old)
    later = post(client, event_json()).json()
    assert later["new_order"] is True and order_row(backend, later["order_id"]).recurrence_of is None
    stats = client.get("/api/v1/stats").json()
    assert (stats["orders"], stats["recurrences"]) == (3, 1)  # the linked one counts, the late one not


def test_sighting_of_a_resolved_unverified_order_reopens_it(client, backend):
    order_id = post(client, event_json()).json()["order_id"]
    set_order(backend, order_id, state=OrderState.resolved, resolved_at=utcnow())
    again = post(client, event_json()).json()
    assert again["order_id"] == order_id and again["new_order"] is False
    detail = client.get(f"/api/v1/orders/{order_id}").json()
    assert detail["state"] == "reopened" and detail["resolved_at"] is None
    last = detail["timeline"][-1]
    assert (last["from_state"], last["to_state"], last["role"], last["actor"]) == \
        ("resolved", "reopened", "edge", "camera:cam-1")


def _sighting_from(seconds_ago: float, **extra) -> dict:
    """An event confirmed a while ago: what an edge's outbox delivers after an outage."""
    then = utcnow() - timedelta(seconds=seconds_ago)
    return event_json(first_seen=(then - timedelta(seconds=30)).isoformat(), confirmed_at=then.isoformat(), **extra)


@pytest.mark.parametrize("state", [OrderState.resolved, OrderState.closed])
def test_a_sighting_from_before_the_fix_is_filed_with_the_order_and_changes_nothing(client, backend, state):
    order_id = post(client, _sighting_from(600)).json()["order_id"]
    set_order(backend, order_id, state=state, resolved_at=utcnow() - timedelta(seconds=60),
              closed_at=utcnow() if state == OrderState.closed else None)
    late = post(client, _sighting_from(300)).json()  # seen 5 min ago, before the fix 1 min ago
    assert (late["order_id"], late["new_order"]) == (order_id, False)
    detail = client.get(f"/api/v1/orders/{order_id}").json()
    assert detail["state"] == state.value and detail["event_count"] == 2
    assert detail["recurrence_of"] is None and client.get("/api/v1/orders").json()["count"] == 1

    after = post(client, event_json()).json()  # seen now, after the fix: the fix did not hold
    if state == OrderState.resolved:
        assert after["order_id"] == order_id and client.get(f"/api/v1/orders/{order_id}").json()["state"] == "reopened"
    else:
        assert after["new_order"] is True and order_row(backend, after["order_id"]).recurrence_of == order_id


def test_the_same_issue_in_a_frame_of_another_size_joins_its_order(client, backend):
    """A camera switched its stream from 320×240 to 640×480: the same stall, at the same place
    of the picture, is the same order; another place is not."""
    first = post(client, event_json(bbox=(100, 100, 200, 200))).json()
    bigger = {"frame_width": 640, "frame_height": 480}
    same = post(client, event_json(bbox=(200, 200, 400, 400), **bigger), frame=jpeg(size=(640, 480))).json()
    assert (same["order_id"], same["new_order"]) == (first["order_id"], False)
    # (100, 100, 200, 200) in the new frame is a quarter of the old box's area: not it
    other = post(client, event_json(bbox=(100, 100, 200, 200), **bigger), frame=jpeg(size=(640, 480))).json()
    assert other["new_order"] is True
