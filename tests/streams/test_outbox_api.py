"""The outbox against the real API: an API that goes away while events are confirmed gets
every one of them, once and in order, when it comes back; an edge killed with SIGKILL
between confirmation and sending delivers the event after its restart."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from api.schemas import CameraRef, EventIn, ModelRef
from streams.camera_server import RtspCameraServer
from streams.outbox import Outbox
from streams.uplink import OutboxSender
from tests.streams.api_process import EDGE_KEY, ApiProcess
from tests.streams.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def event(i: int) -> tuple[str, str, dict[str, bytes]]:
    now = datetime.now(timezone.utc)
    ev = EventIn(event_id=uuid.uuid4(), camera=CameraRef(name=f"cam-{i}"), issue_type="clutter", class_name="clutter",
                 confidence=0.9, bbox=(10, 10, 100, 100), frame_width=320, frame_height=180, first_seen=now,
                 confirmed_at=now, model=ModelRef(name="m", version="1"))
    frame = np.random.default_rng(i).integers(0, 255, (180, 320, 3), dtype=np.uint8)
    return str(ev.event_id), ev.model_dump_json(), {"frame": cv2.imencode(".jpg", frame)[1].tobytes()}


def test_api_down_while_events_are_confirmed_gets_every_event_once(tmp_path):
    api = ApiProcess(tmp_path / "api").start()
    box = Outbox(tmp_path / "outbox")
    sender = OutboxSender(box, api.url, EDGE_KEY, timeout_s=5, backoff_initial_s=0.2, backoff_max_s=1.0)
    sender.start()
    sent: list[str] = []
    try:
        for i in range(2):
            eid, body, images = event(i)
            box.put(eid, body, images)
            sent.append(eid)
        assert wait_for(lambda: len(box) == 0, 30)
        api.stop()
        for i in range(2, 6):  # confirmed while the API is down
            eid, body, images = event(i)
            box.put(eid, body, images)
            sent.append(eid)
        assert wait_for(lambda: sender.failures >= 2, 30)
        assert len(box) == 4  # kept, not dropped
        api.start()
        assert wait_for(lambda: len(box) == 0, 60)
        received = api.event_ids()
    finally:
        sender.stop()
        api.stop()
    assert received == sent  # every event, once, in the order confirmed
    assert sender.sent == 6


def test_events_whose_images_the_cap_dropped_are_accepted_with_their_thumbnail(tmp_path):
    """The thumbnail that stands in for dropped images is smaller than the frame the event
    names; the API refuses a frame of another size, so the event now names the thumbnail's
    (it was a 422, and the event, whose metadata the cap promises to keep, was lost)."""
    api = ApiProcess(tmp_path / "api").start()
    events = [event(i) for i in range(4)]
    box = Outbox(tmp_path / "outbox", max_bytes=int(len(events[0][2]["frame"]) * 1.5))
    for eid, body, images in events:  # while the API is away: the older ones lose their frames
        box.put(eid, body, images)
    assert box.stats()["dropped_images"] == 3
    sender = OutboxSender(box, api.url, EDGE_KEY, timeout_s=5, backoff_initial_s=0.2, backoff_max_s=1.0)
    sender.start()
    try:
        assert wait_for(lambda: len(box) == 0, 30)
        received = api.event_ids()
    finally:
        sender.stop()
        api.stop()
    assert received == [eid for eid, _, _ in events] and sender.rejected == 0


@pytest.fixture(scope="module")
def street_clip(tmp_path_factory, rtsp_available) -> Path:
    from datasets.synth.clip import render_clip

    return render_clip(tmp_path_factory.mktemp("clip") / "street.mp4", seconds=12, width=640, height=360)


def _outbox_ids(db: Path) -> list[str]:
    if not db.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return [r[0] for r in conn.execute("SELECT event_id FROM events ORDER BY seq")]
    except sqlite3.Error:  # created but not yet migrated, or locked for a moment
        return []


def _journal_ids(db) -> list[str]:
    """Confirmations whose evidence was not yet rendered into the outbox."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return [r[0] for r in conn.execute("SELECT event_id FROM confirmed")]
    except sqlite3.Error:
        return []


@pytest.mark.parametrize("moment", ["stored, not sent", "confirmed, evidence not rendered"])
def test_kill_9_after_a_confirmation_loses_nothing(tmp_path, street_clip, moment):
    """The edge is killed once an event is in the outbox (the API is down), or earlier: while
    its evidence is still being blurred and rendered (held there by a test hook). After the
    restart every confirmed event arrives once; one killed before rendering is rendered from
    the camera's next frame."""
    api = ApiProcess(tmp_path / "api")  # migrated, not started: the edge cannot send
    early = moment.startswith("confirmed")
    with RtspCameraServer({"street": street_clip}) as cameras:
        config = {
            "api": {"url": api.url, "key": EDGE_KEY, "timeout_s": 2},
            "model": str(ROOT / "models" / "streetwatch-demo"),
            "sample_interval_s": 1.0,
            "http": {"port": 0},
            "outbox": {"path": str(tmp_path / "outbox")},
            "issues": {t: {"confirm_seconds": 2, "min_hits": 2} for t in ("street_vending", "clutter", "flooding")},
            "cameras": [{"name": "street", "url": cameras.url("street")}],
        }
        cfg = tmp_path / "edge.yaml"
        cfg.write_text(yaml.safe_dump(config))
        cmd = [sys.executable, "-m", "streetwatch_cli", "edge", "-c", str(cfg)]
        log = open(tmp_path / "edge.log", "wb")
        env = {**os.environ, "STREETWATCH_TEST_EVIDENCE_DELAY_S": "600"} if early else None
        edge = subprocess.Popen(cmd, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, env=env)
        db = tmp_path / "outbox" / "outbox.db"
        caught = _journal_ids if early else _outbox_ids
        try:
            assert wait_for(lambda: caught(db) or edge.poll() is not None, 120, step=0.2), "no event was confirmed"
            assert edge.poll() is None, (tmp_path / "edge.log").read_text()[-2000:]
            os.kill(edge.pid, signal.SIGKILL)
            edge.wait(10)
            confirmed = caught(db)
            assert confirmed
            if early:
                assert _outbox_ids(db) == []  # killed inside the window
            api.start()
            edge = subprocess.Popen(cmd, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
            assert wait_for(lambda: set(confirmed) <= set(api.event_ids()), 120, step=1), \
                (tmp_path / "edge.log").read_text()[-2000:]
            received = api.event_ids()
        finally:
            if edge.poll() is None:
                edge.send_signal(signal.SIGINT)
                try:
                    edge.wait(15)
                except subprocess.TimeoutExpired:
                    edge.kill()
            api.stop()
            log.close()
    for eid in confirmed:
        assert received.count(eid) == 1
    assert _journal_ids(db) == []
