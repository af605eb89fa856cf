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
    for t in range(0, int(clear), 60):  # a frame a minute, none with the issue on its region
        assert verifier.observe("cam-1", (320, 240), others, jpeg, now=t) == []
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
    assert verifier.observe("cam-1", (320, 240), [(CLUTTER, (100, 100, 200, 200))], jpeg, now=3) == []  # backing off
    assert verifier.observe("cam-1", (320, 240), [(CLUTTER, (100, 100, 200, 200))], jpeg, now=7) == \
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


def test_a_camera_that_was_not_watching_does_not_verify_the_fix(api):
    """Seen at t=1 and 2, then the camera stalls for longer than the clear time: the first
    frame back, with the issue hidden once (a bus), once sent "absent"; the clear time now
    runs on frames looked at."""
    settings, admin, edge = api
    order_id = _resolved_order(settings, admin)
    verifier = FixVerifier(edge, ["cam-1"], min_hits=3)
    verifier.poll(now=0)
    clear = verifier.watches["cam-1"][order_id].clear_seconds
    still = [(CLUTTER, (100, 100, 200, 200))]
    assert verifier.observe("cam-1", (320, 240), still, jpeg, now=1) == []
    assert verifier.observe("cam-1", (320, 240), still, jpeg, now=2) == []
    assert verifier.observe("cam-1", (320, 240), [], jpeg, now=clear + 3) == []
    assert order_row(settings, order_id).verified_at is None
    for t in range(int(clear + 63), int(2 * clear + 3), 60):  # watched again, clear all along
        assert verifier.observe("cam-1", (320, 240), [], jpeg, now=t) == []
    # the clear time from the first frame back
    assert verifier.observe("cam-1", (320, 240), [], jpeg, now=2 * clear + 3) == [(order_id, "absent")]


def test_an_api_that_fails_verdicts_is_not_sent_one_per_frame():
    """Each verdict renders a blurred frame (up to a second of CPU): during an outage the
    watch backs off instead of rendering and posting on every analysed frame."""
    posts = []
    good = {"order_id": 7, "issue_type": "clutter", "bbox": [100, 100, 200, 200], "frame_width": 320,
            "frame_height": 240, "clear_seconds": 60}

    def api(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json=[good])
        posts.append(request.url.path)
        return httpx.Response(503, json={"detail": "database unavailable, retry later"})

    rendered = []
    verifier = FixVerifier(httpx.Client(base_url="http://api", transport=httpx.MockTransport(api)), ["cam-1"],
                           min_hits=1)
    verifier.poll(now=0)
    for t in range(1, 101):  # a frame a second for 100 s, the issue still there
        verifier.observe("cam-1", (320, 240), [(CLUTTER, (100, 100, 200, 200))], lambda: rendered.append(1) or b"j",
                         now=t)
    assert 3 <= len(posts) <= 6 and len(rendered) == len(posts)  # at 1, 6, 16, 36, 76 s
    assert list(verifier.watches["cam-1"]) == [7]  # still watched, the verdict still to give
