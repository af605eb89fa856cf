"""The outbox drains a backlog through the API's batch route: against the real API (every
event once and in order, a refused one dropped alone), and against answers a mock gives (an
API without the route, a batch refused whole, an event the API could not take)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

import cv2
import httpx
import numpy as np
import pytest

from api.schemas import CameraRef, EventIn, ModelRef
from streams.outbox import Outbox
from streams.uplink import OutboxSender
from tests.streams.api_process import EDGE_KEY, ApiProcess
from tests.streams.helpers import wait_for


def event(i: int, **extra) -> tuple[str, str, dict[str, bytes]]:
    now = datetime.now(timezone.utc)
    ev = EventIn(event_id=uuid.uuid4(), camera=CameraRef(name=f"cam-{i}"), issue_type="clutter", class_name="clutter",
                 confidence=0.9, bbox=(10, 10, 100, 100), frame_width=320, frame_height=180, first_seen=now,
                 confirmed_at=now, model=ModelRef(name="m", version="1"))
    frame = np.random.default_rng(i).integers(0, 255, (180, 320, 3), dtype=np.uint8)
    body = json.loads(ev.model_dump_json()) | extra
    return str(ev.event_id), json.dumps(body), {"frame": cv2.imencode(".jpg", frame)[1].tobytes()}


@pytest.mark.integration
def test_a_backlog_drains_in_batches_against_the_real_api(tmp_path):
    api = ApiProcess(tmp_path / "api").start()
    box = Outbox(tmp_path / "outbox")
    ids: list[str] = []
    for i in range(12):  # confirmed while the box could not send: a backlog
        eid, body, images = event(i, confidence=7.0) if i == 5 else event(i)
        box.put(eid, body, images)
        if i != 5:
            ids.append(eid)
    sender = OutboxSender(box, api.url, EDGE_KEY, timeout_s=10, backoff_initial_s=0.2, backoff_max_s=1.0,
                          batch_max_events=5)
    sender.start()
    try:
        assert wait_for(lambda: len(box) == 0, 60)
        received = api.event_ids()
    finally:
        sender.stop()
        api.stop()
    assert received == ids  # every good event, once, in order
    assert sender.sent == 11 and sender.rejected == 1  # the invalid one alone was dropped
    assert sender.batches == 3  # 5 + 5 + 2, not 12 requests


class BatchlessApi:
    """An API from before the batch route, or one answering `batch_status` to it."""

    def __init__(self, batch_status: int = 404):
        self.batch_status = batch_status
        self.paths: list[str] = []
        self.received: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        if request.url.path.endswith("/batch"):
            return httpx.Response(self.batch_status, json={"detail": "Not Found"})
        self.received.append(request.headers["Idempotency-Key"])
        return httpx.Response(201, json={"order_id": 1, "replay": False})


def drained(box: Outbox, api, **kwargs) -> OutboxSender:
    sender = OutboxSender(box, "http://api", transport=httpx.MockTransport(api), backoff_initial_s=0.01,
                          backoff_max_s=0.05, batch_max_events=10, **kwargs)
    sender.start()
    try:
        assert wait_for(lambda: len(box) == 0, 10)
    finally:
        sender.stop()
    return sender


@pytest.mark.parametrize("status", [404, 405])
def test_an_api_without_the_batch_route_gets_one_event_per_request(tmp_path, status):
    box = Outbox(tmp_path / "ob")
    ids: list[str] = []
    for i in range(4):
        eid, body, images = event(i)
        box.put(eid, body, images)
        ids.append(eid)
    api = BatchlessApi(status)
    sender = drained(box, api)
    assert api.received == ids and sender.batches == 0
    assert api.paths.count("/api/v1/events/batch") == 1  # asked once, then not again for a while


def test_a_batch_refused_whole_goes_one_by_one_and_smaller_batches_follow(tmp_path):
    box = Outbox(tmp_path / "ob")
    ids = []
    for i in range(4):
        eid, body, images = event(i)
        box.put(eid, body, images)
        ids.append(eid)
    api = BatchlessApi(413)
    sender = drained(box, api)
    assert api.received == ids
    assert sender.batch_max_events < 10  # halved after each refusal


def test_an_event_the_api_could_not_take_is_kept_and_sent_alone_next(tmp_path):
    """503 for the second event of a batch (the store went away): the first is acknowledged,
    the rest stay and go on; none is lost, none dropped."""
    box = Outbox(tmp_path / "ob")
    ids = []
    for i in range(3):
        eid, body, images = event(i)
        box.put(eid, body, images)
        ids.append(eid)
    stored: list[str] = []
    calls = {"batch": 0}

    def api(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/batch"):
            calls["batch"] += 1
            events = json.loads(dict(_fields(request))["events"])
            results = []
            for i, ev in enumerate(events):
                if calls["batch"] == 1 and i >= 1:
                    results.append({"index": i, "event_id": ev["event_id"], "status": 503, "detail": "S3 down"})
                else:
                    stored.append(ev["event_id"])
                    results.append({"index": i, "event_id": ev["event_id"], "status": 201, "order_id": 1,
                                    "new_order": True, "replay": False})
            return httpx.Response(200, json={"results": results})
        stored.append(request.headers["Idempotency-Key"])
        return httpx.Response(201, json={"order_id": 1, "replay": False})

    sender = drained(box, api)
    assert stored == ids and sender.rejected == 0 and sender.sent == 3


def _fields(request: httpx.Request) -> list[tuple[str, str]]:
    """The text fields of a multipart request (enough for `events`)."""
    boundary = request.headers["content-type"].split("boundary=")[1].encode()
    out = []
    for part in request.read().split(b"--" + boundary):
        head, _, body = part.partition(b"\r\n\r\n")
        if b'name="' in head and b"filename=" not in head:
            name = head.split(b'name="')[1].split(b'"')[0].decode()
            out.append((name, body.rstrip(b"\r\n").decode()))
    return out


def test_batches_stay_within_the_byte_cap(tmp_path):
    box = Outbox(tmp_path / "ob")
    for i in range(6):
        box.put(*event(i))
    one = len(box.peek().images["frame"])
    assert len(box.peek_many(10, 2 * one + 1)) == 2
    assert len(box.peek_many(10, 1)) == 1  # the oldest always goes, whatever its size
    assert len(box.peek_many(4, 10**9)) == 4
