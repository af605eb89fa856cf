"""The dedup locks: sightings that could end in one order wait for each other, the rest
do not (api/dedup_locks.py), and racing sightings from several cameras and residents at
one place still make one order."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from sqlmodel import Session, select

import api.events
from api.db import get_engine
from api.dedup import CameraInfo, Sighting
from api.dedup_locks import sighting_locks
from api.models import Order, utcnow
from api.schemas import IssueType
from api.settings import Settings
from tests.api.factories import BASE, jpeg, metres_north, place_camera, post, seen_by

SETTINGS = Settings(database_url="sqlite://")


def _shares_a_lock(a: Sighting, b: Sighting) -> bool:
    (type_a, excl_a, keys_a), (type_b, excl_b, keys_b) = sighting_locks(SETTINGS, a), sighting_locks(SETTINGS, b)
    assert type_a == type_b  # every sighting of a type takes the type lock, shared or not
    return excl_a or excl_b or bool(set(keys_a) & set(keys_b))


def _at(m: float, issue: IssueType = IssueType.flooding) -> Sighting:
    return Sighting(issue, utcnow(), None, None, *metres_north(m))


def test_sightings_within_the_radius_share_a_lock_and_far_ones_do_not():
    radius = SETTINGS.policy(IssueType.flooding).dedup_radius_m  # 60 m
    for start in (0.0, 17.3, 59.9, 1234.5):  # wherever the band edges fall
        assert _shares_a_lock(_at(start), _at(start + radius * 0.99))
    assert not _shares_a_lock(_at(0), _at(4 * radius))
    # Other issue types never wait for a flood.
    assert sighting_locks(SETTINGS, _at(0))[0] != sighting_locks(SETTINGS, _at(0, IssueType.clutter))[0]


def test_one_cameras_sightings_share_a_lock_wherever_they_are():
    cam = CameraInfo(7, "cam-7")
    far_apart = [Sighting(IssueType.clutter, utcnow(), cam, (0, 0, 10, 10)),
                 Sighting(IssueType.clutter, utcnow(), cam, (0, 0, 10, 10), *metres_north(5000))]
    assert _shares_a_lock(*far_apart)
    assert not _shares_a_lock(far_apart[0], Sighting(IssueType.clutter, utcnow(), CameraInfo(8, "cam-8")))


def test_a_camera_with_ground_points_waits_for_every_sighting_of_the_type():
    mapped = CameraInfo(3, "cam-3", ground_points=[[0, 0, *BASE]] * 4)
    type_key, exclusive, _ = sighting_locks(SETTINGS, Sighting(IssueType.clutter, utcnow(), mapped, (0, 0, 1, 1),
                                                               *BASE))
    assert exclusive
    assert sighting_locks(SETTINGS, _at(9000, IssueType.clutter))[:2] == (type_key, False)


def test_cameras_and_residents_racing_at_one_flood_make_one_order(client, backend, monkeypatch):
    """Six cameras 10 m apart and four residents report the same flood at once: each is
    within 60 m of every other, so they must all land on one order (both backends)."""
    for i in range(6):
        place_camera(client, f"cam-{i}", *metres_north(10 * i))
    barrier, real_put = threading.Barrier(10, timeout=30), api.events._put_objects

    def put_then_wait(*args):
        keys = real_put(*args)
        barrier.wait()  # everyone reaches the dedup decision together
        return keys

    monkeypatch.setattr(api.events, "_put_objects", put_then_wait)
    frame = jpeg()

    def camera(i: int):
        return post(client, seen_by(f"cam-{i}", issue_type="flooding"), frame=frame)

    def resident(i: int):
        lat, lon = metres_north(5 + 10 * i)
        return client.post("/api/v1/reports", data={"issue_type": "flooding", "lat": lat, "lon": lon},
                           files={"photo": ("p.jpg", frame, "image/jpeg")})

    with ThreadPoolExecutor(max_workers=10) as pool:
        futures = [pool.submit(camera, i) for i in range(6)] + [pool.submit(resident, i) for i in range(4)]
        answers = [f.result() for f in futures]
    assert [a.status_code for a in answers] == [201] * 10, [a.text for a in answers]
    with Session(get_engine(backend.database_url)) as s:
        orders = s.exec(select(Order)).all()
    assert len(orders) == 1 and orders[0].event_count == 10
