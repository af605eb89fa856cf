"""Evidence objects no row names are deleted once an hour old (issue 19, item 10): a SIGKILL between
an object's write and its rows' commit left them behind for good (34 after one kill under load)."""

from __future__ import annotations

import os
import time
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlmodel import Session

from api.db import get_engine
from api.evidence_store import make_store
from api.main import create_app
from api.models import utcnow
from api.orphans import sweep_orphans
from tests.api.factories import auth, event_json, jpeg, make_key, post, stored_objects

ORPHANS = ["events/0b9f6c1e-5d2a-4c1b-9a57-3f0e2d8c4b11/0123456789ab-frame.jpg", "reports/0123456789ab-report.jpg",
           "orders/7/check/0123456789ab-after.jpg"]


def test_objects_no_row_names_are_deleted_once_an_hour_old(client, backend):
    post(client, event_json(), annotated=jpeg((1, 2, 3)))
    named = stored_objects(backend)
    store = make_store(backend)
    for key in [*ORPHANS, "elsewhere/not-ours.bin"]:
        store.put(key, b"left behind by a killed process", "image/jpeg")
    with Session(get_engine(backend.database_url)) as session:
        assert sweep_orphans(session, store) == 0  # all of them are young yet
        assert sweep_orphans(session, store, now=utcnow() + timedelta(hours=2)) == len(ORPHANS)
    assert stored_objects(backend) == sorted([*named, "elsewhere/not-ours.bin"])
    assert client.get(f"/api/v1/orders/{client.get('/api/v1/orders').json()['data'][0]['id']}/evidence/verify"
                      ).json()["ok"]


def test_the_sweeper_removes_orphans_by_itself(sqlite_backend):
    settings = sqlite_backend.model_copy(update={"sweep_interval_seconds": 0.2})
    store = make_store(settings)
    store.put(ORPHANS[0], b"orphan", "image/jpeg")
    two_hours_ago = time.time() - 7200
    os.utime(settings.evidence_dir / ORPHANS[0], (two_hours_ago, two_hours_ago))
    with TestClient(create_app(settings), headers=auth(make_key(settings, "edge"))) as client:
        assert post(client, event_json()).status_code == 201
        deadline = time.monotonic() + 10
        while ORPHANS[0] in stored_objects(settings) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ORPHANS[0] not in stored_objects(settings)
        assert len(stored_objects(settings)) == 1  # the event's frame stays
