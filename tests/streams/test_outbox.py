"""The durable outbox: order, durability across a reopen, the disk cap, and the sender."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid

import cv2
import httpx
import numpy as np
import pytest

from streams.outbox import Outbox
from streams.uplink import OutboxSender


def jpeg(seed: int, size=(360, 640)) -> bytes:
    noise = np.random.default_rng(seed).integers(0, 255, (*size, 3), dtype=np.uint8)  # incompressible
    return cv2.imencode(".jpg", noise, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


def put(box: Outbox, n: int, seed: int = 0) -> list[str]:
    ids = []
    for i in range(n):
        eid = str(uuid.uuid4())
        box.put(eid, json.dumps({"n": i}), {"frame": jpeg(seed + i), "crop": jpeg(seed + i, (64, 64))})
        ids.append(eid)
    return ids


def drain(box: Outbox) -> list[str]:
    out = []
    while (item := box.peek()) is not None:
        out.append(item.event_id)
        box.ack(item.seq)
    return out


def test_events_come_out_in_order_and_survive_a_reopen(tmp_path):
    box = Outbox(tmp_path / "ob")
    ids = put(box, 3)
    box.put(ids[0], "{}", {"frame": b"x"})  # the same event again: ignored
    box.close()  # as if the process had died here
    again = Outbox(tmp_path / "ob")
    first = again.peek()
    assert first.event_id == ids[0] and set(first.images) == {"frame", "crop"} and not first.images_dropped
    assert drain(again) == ids
    assert len(again) == 0 and list((tmp_path / "ob" / "evidence").iterdir()) == []


def test_orphan_evidence_without_a_row_is_swept(tmp_path):
    box = Outbox(tmp_path / "ob")
    box.close()
    orphan = tmp_path / "ob" / "evidence" / "half-written"
    orphan.mkdir()
    (orphan / "frame.jpg").write_bytes(b"x")
    Outbox(tmp_path / "ob")
    assert not orphan.exists()


def test_cap_drops_oldest_images_first_and_keeps_metadata(tmp_path):
    one = len(jpeg(0)) + len(jpeg(0, (64, 64)))
    box = Outbox(tmp_path / "ob", max_bytes=int(one * 3.5))
    ids = put(box, 5)
    stats = box.stats()
    assert stats["events"] == 5  # no event lost
    assert stats["bytes"] <= one * 3.5
    assert stats["dropped_images"] == 4  # two events' frame + crop: the two oldest
    items = []
    while (item := box.peek()) is not None:
        items.append(item)
        box.ack(item.seq)
    assert [i.event_id for i in items] == ids
    assert [i.images_dropped for i in items] == [True, True, False, False, False]
    # a dropped event still has a small frame (the API needs one) and its metadata
    small = items[0].images["frame"]
    assert set(items[0].images) == {"frame"} and len(small) < len(jpeg(0)) / 5
    assert cv2.imdecode(np.frombuffer(small, np.uint8), cv2.IMREAD_COLOR).shape[1] == 160
    assert json.loads(items[0].event_json) == {"n": 0}


class FlakyApi:
    """Refuses connections while down; records what it acknowledged (replays included)."""

    def __init__(self):
        self.up = False
        self.received: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if not self.up:
            raise httpx.ConnectError("connection refused", request=request)
        key = request.headers["Idempotency-Key"]
        if key.startswith("bad"):
            return httpx.Response(422, json={"detail": "no"})
        replay = key in self.received
        self.received.append(key)
        return httpx.Response(200 if replay else 201, json={"order_id": 1, "replay": replay})


def wait(cond, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.02)
    return cond()


def test_sender_retries_while_down_then_sends_in_order_once(tmp_path):
    api = FlakyApi()
    box = Outbox(tmp_path / "ob")
    sender = OutboxSender(box, "http://api", transport=httpx.MockTransport(api), backoff_initial_s=0.01,
                          backoff_max_s=0.05)
    sender.start()
    try:
        ids = put(box, 3)
        assert wait(lambda: sender.failures >= 3)
        assert len(box) == 3 and api.received == []  # nothing lost while the API is down
        api.up = True
        ids += put(box, 2, seed=10)
        assert wait(lambda: len(box) == 0)
    finally:
        sender.stop()
    assert api.received == ids and sender.sent == 5


def test_rejected_event_is_dropped_and_the_rest_go_on(tmp_path):
    api = FlakyApi()
    api.up = True
    box = Outbox(tmp_path / "ob")
    box.put("bad-1", "{}", {"frame": b"\xff\xd8\xff"})
    good = put(box, 1)
    sender = OutboxSender(box, "http://api", transport=httpx.MockTransport(api))
    sender.start()
    try:
        assert wait(lambda: len(box) == 0)
    finally:
        sender.stop()
    assert sender.rejected == 1 and api.received == good


def kept_until_fixed(tmp_path, failure) -> tuple[list[str], list[str], OutboxSender]:
    """Two events in the outbox, an API whose answer is `failure(request)` until it is fixed
    (then 201): the events must stay while it fails and all go, in order, once it is fixed.
    Returns (ids put, ids received, the sender)."""
    fixed = {"now": False}
    received: list[str] = []

    def api(request: httpx.Request) -> httpx.Response:
        if not fixed["now"]:
            return failure(request)
        received.append(request.headers["Idempotency-Key"])
        return httpx.Response(201, json={"order_id": 1, "replay": False})

    box = Outbox(tmp_path / "ob")
    ids = put(box, 2)
    sender = OutboxSender(box, "http://api", transport=httpx.MockTransport(api), backoff_initial_s=0.01,
                          backoff_max_s=0.05)
    sender.start()
    try:
        assert wait(lambda: sender.failures >= 3)
        assert len(box) == 2 and sender.rejected == 0
        fixed["now"] = True
        assert wait(lambda: len(box) == 0)
    finally:
        sender.stop()
    return ids, received, sender


@pytest.mark.parametrize("status", [401, 403, 404])
def test_a_misconfigured_key_or_url_keeps_the_events(tmp_path, status):
    """401/403/404 say the box is set up wrong, not that the event is: nothing is dropped,
    and once the key is fixed every event goes, in order."""
    refused = lambda request: httpx.Response(status, json={"detail": "invalid API key"})  # noqa: E731
    ids, received, _ = kept_until_fixed(tmp_path, refused)
    assert received == ids


def test_an_unexpected_error_keeps_the_sender_alive_and_the_events(tmp_path, caplog):
    """Not the network: e.g. a key httpx cannot put in a header (UnicodeEncodeError). The
    sender once died of it silently, and the box went on confirming events nobody sent."""
    def failure(request: httpx.Request) -> httpx.Response:
        raise UnicodeEncodeError("ascii", "kéy", 1, 2, "ordinal not in range(128)")

    ids, received, _ = kept_until_fixed(tmp_path, failure)
    assert received == ids
    assert "UnicodeEncodeError" in caplog.text and "Traceback" in caplog.text  # said, with where it came from


@pytest.mark.parametrize("cap_mb", [0.0001])
def test_single_event_over_the_cap_is_still_kept(tmp_path, cap_mb):
    box = Outbox(tmp_path / "ob", max_bytes=int(cap_mb * 2**20))
    ids = put(box, 2)
    assert drain(box) == ids  # metadata is never dropped


def _send_all(box: Outbox, api) -> OutboxSender:
    """Run a sender (backoff 10-50 ms) against `api` until the outbox is empty; the stopped sender."""
    sender = OutboxSender(box, "http://api", transport=httpx.MockTransport(api), backoff_initial_s=0.01,
                          backoff_max_s=0.05)
    sender.start()
    try:
        assert wait(lambda: len(box) == 0)
        assert sender._thread.is_alive()
    finally:
        sender.stop()
    return sender


def test_a_conflict_is_retried_a_few_times_then_the_event_gives_way(tmp_path):
    """409 (a write that met a concurrent one) is worth retrying, but one event that always
    conflicts must not hold up those behind it forever."""
    tries: dict[str, int] = {}

    def api(request: httpx.Request) -> httpx.Response:
        key = request.headers["Idempotency-Key"]
        tries[key] = tries.get(key, 0) + 1
        if key == "always" or tries[key] <= 2:
            return httpx.Response(409, json={"detail": "conflicts with what is stored (a concurrent change?)"})
        return httpx.Response(201, json={"order_id": 1, "replay": False})

    box = Outbox(tmp_path / "ob")
    box.put("always", "{}", {"frame": jpeg(0)})
    later = put(box, 1)
    sender = _send_all(box, api)
    assert tries["always"] == 5 and sender.rejected == 1  # CONFLICT_TRIES, then dropped
    assert tries[later[0]] == 3 and sender.sent == 1  # a passing conflict: delivered


def test_an_optional_part_over_the_upload_limit_is_left_out_not_the_event(tmp_path):
    parts: list[set[str]] = []

    def api(request: httpx.Request) -> httpx.Response:
        body = request.read()
        parts.append({kind for kind in ("frame", "crop") if f'name="{kind}"'.encode() in body})
        if b'name="crop"' in body:
            return httpx.Response(413, json={"detail": "crop is larger than 1000 bytes"})
        return httpx.Response(201, json={"order_id": 1, "replay": False})

    box = Outbox(tmp_path / "ob")
    ids = put(box, 1)
    sender = _send_all(box, api)
    assert parts == [{"frame", "crop"}, {"frame"}] and sender.sent == 1 and sender.rejected == 0 and ids


def test_retry_after_is_honoured(tmp_path):
    times: list[float] = []

    def api(request: httpx.Request) -> httpx.Response:
        times.append(time.monotonic())
        if len(times) == 1:
            return httpx.Response(503, json={"detail": "database unavailable, retry later"}, headers={"Retry-After": "1"})
        return httpx.Response(201, json={"order_id": 1, "replay": False})

    box = Outbox(tmp_path / "ob")
    put(box, 1)
    _send_all(box, api)  # its own backoff is 10-50 ms
    assert len(times) == 2 and times[1] - times[0] >= 0.95


def test_a_200_that_is_not_the_apis_answer_is_not_taken_for_one(tmp_path):
    """A proxy's page or a list: the event is not known to have arrived, so it stays."""
    answers = [httpx.Response(200, json=["ok"]), httpx.Response(200, text="<html>login</html>")]

    def api(request: httpx.Request) -> httpx.Response:
        return answers.pop(0) if answers else httpx.Response(201, json={"order_id": 1, "replay": False})

    box = Outbox(tmp_path / "ob")
    ids = put(box, 1)
    sender = _send_all(box, api)
    assert sender.sent == 1 and sender.failures == 2 and ids


def test_the_sender_outlives_a_failing_outbox(tmp_path, monkeypatch):
    """A full disk makes the outbox's own SQLite calls fail; the sender used to die of it and
    send nothing more once there was room again."""
    api = FlakyApi()
    api.up = True
    box = Outbox(tmp_path / "ob")
    ids = put(box, 2)
    real_peek, failures = box.peek, {"left": 2}

    def peek():
        if failures["left"]:
            failures["left"] -= 1
            raise sqlite3.OperationalError("database or disk is full")
        return real_peek()

    monkeypatch.setattr(box, "peek", peek)
    _send_all(box, api)
    assert api.received == ids
