import time
import uuid
from datetime import datetime, timezone

import httpx

from api.schemas import CameraRef, EventIn, ModelRef
from streams.uplink import EventUploader, OutgoingEvent


def item() -> OutgoingEvent:
    now = datetime.now(timezone.utc)
    ev = EventIn(event_id=uuid.uuid4(), camera=CameraRef(name="c"), issue_type="clutter", class_name="clutter",
                 confidence=0.9, bbox=(1, 1, 10, 10), frame_width=20, frame_height=20, first_seen=now,
                 confirmed_at=now, model=ModelRef(name="m", version="1"))
    return OutgoingEvent(ev, {"frame": b"\xff\xd8\xff"})


def run(handler, items, until) -> EventUploader:
    up = EventUploader("http://api", transport=httpx.MockTransport(handler), backoff_initial_s=0.01, backoff_max_s=0.05)
    up.start()
    for it in items:
        up.submit(it)
    deadline = time.monotonic() + 10
    while not until(up) and time.monotonic() < deadline:
        time.sleep(0.02)
    up.stop()
    return up


def test_retries_until_acknowledged_with_the_same_idempotency_key():
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Idempotency-Key"])
        if len(seen) < 3:
            return httpx.Response(503, json={"detail": "S3 down"})
        return httpx.Response(201, json={"order_id": 1, "replay": False})

    it = item()
    up = run(handler, [it], lambda u: u.sent == 1)
    assert up.sent == 1 and seen == [str(it.event.event_id)] * 3


def test_rejected_event_is_dropped_and_the_next_one_still_goes():
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(422, json={"detail": "bad"}) if len(calls) == 1 else httpx.Response(201, json={"order_id": 2})

    up = run(handler, [item(), item()], lambda u: u.sent == 1)
    assert up.rejected == 1 and up.sent == 1 and len(calls) == 2


def test_connection_errors_are_retried():
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) < 2:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json={"order_id": 1, "replay": True})

    up = run(handler, [item()], lambda u: u.sent == 1)
    assert up.sent == 1 and len(calls) == 2
