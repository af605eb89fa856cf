"""The camera row an event upserted is remembered briefly (api/camera_memory.py): further
events of the camera skip the camera statement, a placement through this process is seen at
once, and a remembered camera whose row is gone costs a second write, not the event."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import event as sa_event
from sqlmodel import Session, select

from api import camera_memory
from api.db import get_engine
from api.dedup import CameraInfo
from api.models import Camera, Event, Order
from api.schemas import CameraRef
from api.settings import Settings
from tests.api.factories import counts, event_json, order_row, place_camera, post


@pytest.fixture
def camera_statements(backend: Settings) -> Iterator[list[str]]:
    engine = get_engine(backend.database_url)
    seen: list[str] = []

    def note(_conn, _cursor, statement: str, *_args) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO CAMERA"):
            seen.append(statement)

    sa_event.listen(engine, "before_cursor_execute", note)
    yield seen
    sa_event.remove(engine, "before_cursor_execute", note)


def test_events_of_a_remembered_camera_skip_the_camera_statement(client, backend, camera_statements):
    for bbox in ((10, 10, 60, 60), (100, 100, 160, 160), (12, 10, 60, 60)):
        assert post(client, event_json(camera="cam-1", bbox=bbox)).status_code == 201
    assert len(camera_statements) == 1
    # Named differently (the edge's config moved it), the camera is upserted again.
    moved = event_json(camera="cam-1", bbox=(200, 150, 260, 200))
    moved["camera"]["lat"] += 0.001
    assert post(client, moved).status_code == 201
    assert len(camera_statements) == 2


def test_a_camera_is_upserted_again_once_the_memory_expires(client, backend, camera_statements, monkeypatch):
    monkeypatch.setattr(camera_memory, "CAMERA_MEMORY_S", 0.0)
    for bbox in ((10, 10, 60, 60), (100, 100, 160, 160)):
        assert post(client, event_json(camera="cam-1", bbox=bbox)).status_code == 201
    assert len(camera_statements) == 2


def test_a_placement_through_this_process_reaches_the_next_event(client, backend):
    post(client, event_json(camera="cam-1", bbox=(10, 10, 60, 60)))
    place_camera(client, "cam-1", 31.5, 121.7)
    order = order_row(backend, post(client, event_json(camera="cam-1", bbox=(200, 150, 260, 200))).json()["order_id"])
    assert (order.lat, order.lon) == pytest.approx((31.5, 121.7))


def test_a_remembered_camera_whose_row_is_gone_is_upserted_and_the_event_kept(client, backend):
    event = event_json(camera="cam-1")
    ref = CameraRef.model_validate(event["camera"])
    # As if the database had been emptied under the running API: the id names no row.
    camera_memory.remember(str(get_engine(backend.database_url).url), ref,
                           CameraInfo(9999, "cam-1", ref.lat, ref.lon, ref.grid_id))
    resp = post(client, event)
    assert resp.status_code == 201, resp.text
    assert not resp.json()["replay"]
    with Session(get_engine(backend.database_url)) as s:
        camera = s.exec(select(Camera).where(Camera.name == "cam-1")).one()
        assert s.exec(select(Event.camera_id)).one() == camera.id
        assert s.get(Order, resp.json()["order_id"]).camera_id == camera.id
    assert counts(backend)["event"] == 1
    # And it is a replay that the second write still answers as one.
    again = post(client, event)
    assert again.status_code == 200 and again.json()["replay"]
    assert counts(backend)["event"] == 1
