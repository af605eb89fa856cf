"""The edge's camera check of resolved orders, against the real API (in-process, SQLite)."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi.testclient import TestClient

from api.db import upgrade_database
from api.main import create_app
from api.models import OrderState, utcnow
from api.schemas import IssueType
from streams.verifier import FixVerifier
from tests.api.conftest import sqlite_settings
from tests.api.factories import add_worker, auth, event_json, jpeg, make_key, order_row, post, set_order

CLUTTER = IssueType.clutter


@pytest.fixture
def api(tmp_path):
    settings = sqlite_settings(tmp_path)
    upgrade_database(settings.database_url)
    with TestClient(create_app(settings), headers=auth(make_key(settings, "admin"))) as admin, \
            TestClient(create_app(settings), headers=auth(make_key(settings, "edge"))) as edge:
        yield settings, admin, edge


def _resolved_order(settings, admin) -> int:
    worker = add_worker(admin, "W", on_duty=False)
    order_id = post(admin, event_json(bbox=(100, 100, 200, 200))).json()["order_id"]
    set_order(settings, order_id, state=OrderState.resolved, resolved_at=utcnow(), worker_id=worker)
    return order_id


def test_region_clear_for_the_clear_time_is_verified(api):
    settings, admin, edge = api
    order_id = _resolved_order(settings, admin)
    verifier = FixVerifier(edge, ["cam-1"], min_hits=3)
    verifier.poll(now=0)
    (watch,) = verifier.watches["cam-1"].values()
    clear = watch.clear_seconds
    # A different issue type on the region, and the same type elsewhere, do not count.
    others = [(IssueType.flooding, (100, 100, 200, 200)), (CLUTTER, (0, 0, 30, 30))]
    assert verifier.observe("cam-1", (320, 240), others, jpeg, now=clear / 2) == []
    assert verifier.observe("cam-1", (320, 240), others, jpeg, now=clear + 1) == [(order_id, "absent")]
    order = order_row(settings, order_id)
    assert order.state == OrderState.resolved and order.verified_at is not None
    assert verifier.watches["cam-1"] == {}


def test_issue_still_seen_reopens_after_min_hits(api):
    settings, admin, edge = api
    order_id = _resolved_order(settings, admin)
    verifier = FixVerifier(edge, ["cam-1"], min_hits=3)
    verifier.poll(now=0)
    # The camera now runs at 640 × 480: the order's box scales with it.
    seen = [(CLUTTER, (210, 205, 395, 410))]
    assert verifier.observe("cam-1", (640, 480), seen, jpeg, now=1) == []
    assert verifier.observe("cam-1", (640, 480), seen, jpeg, now=2) == []
    assert verifier.observe("cam-1", (640, 480), seen, jpeg, now=3) == [(order_id, "present")]
    assert order_row(settings, order_id).state == OrderState.reopened
    verifier.poll(now=4)
    assert verifier.watches["cam-1"] == {}  # nothing left to check


def test_api_down_keeps_the_watch_and_a_closed_order_drops_it(api):
    settings, admin, edge = api
    order_id = _resolved_order(settings, admin)
    verifier = FixVerifier(edge, ["cam-1"], min_hits=1)
    verifier.poll(now=0)

    verifier.client = httpx.Client(base_url="http://127.0.0.1:9", timeout=1)  # the uplink is down
    assert verifier.observe("cam-1", (320, 240), [(CLUTTER, (100, 100, 200, 200))], jpeg, now=1) == []
    verifier.poll(now=1.5)  # fails too, and keeps the list
    assert list(verifier.watches["cam-1"]) == [order_id]
    assert order_row(settings, order_id).state == OrderState.resolved
    verifier.client = edge
    # Meanwhile a reviewer closes the order: the verdict gets 409 and the watch goes.
    admin.post(f"/api/v1/orders/{order_id}/close", json={"rating": 3})
    assert verifier.observe("cam-1", (320, 240), [(CLUTTER, (100, 100, 200, 200))], jpeg, now=3) == \
        [(order_id, "present")]
    assert order_row(settings, order_id).state == OrderState.closed and verifier.watches["cam-1"] == {}


def test_replies_the_box_cannot_read_keep_the_watch_list_and_the_thread():
    """A 200 that is not JSON (a captive portal, a proxy's error page) and an issue type this
    box does not know (a newer API) once ended the verifier's thread, silently."""
    replies = {"body": b"<html>login</html>"}
    good = {"order_id": 7, "issue_type": "clutter", "bbox": [1, 2, 30, 40], "frame_width": 320,
            "frame_height": 240, "clear_seconds": 60}

    def api(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=replies["body"], headers={"Content-Type": "application/json"})

    verifier = FixVerifier(httpx.Client(base_url="http://api", transport=httpx.MockTransport(api)), ["cam-1"])
    verifier.poll(now=0)
    assert verifier.watches == {}
    replies["body"] = json.dumps([good, {**good, "order_id": 8, "issue_type": "graffiti"}, {"order_id": 9}]).encode()
    verifier.poll(now=1)
    assert list(verifier.watches["cam-1"]) == [7]
    replies["body"] = b"not json"
    verifier.poll(now=2)
    assert list(verifier.watches["cam-1"]) == [7]  # kept, as when the API is down
