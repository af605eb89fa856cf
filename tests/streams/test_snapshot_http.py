"""http_snapshot cameras against a fake snapshot server: Basic and Digest, and every fault of
the issue as a clear per-camera state, log line and /metrics count that blocks nobody."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from streams.config import EdgeConfig
from streams.grab import GrabError
from streams.pipeline import EdgePipeline
from streams.snapshot_http import HttpSnapshotGrabber, snapshot_client
from streams.snapshot_server import SnapshotServer
from tests.streams.helpers import wait_for
from vision.detections import Detections
from vision.manifest import load_manifest

ROOT = Path(__file__).resolve().parents[2]


def _jpeg(shade: int) -> bytes:
    image = np.full((180, 320, 3), shade, np.uint8)
    cv2.putText(image, str(shade), (20, 100), cv2.FONT_HERSHEY_SIMPLEX, 2, (255, 255, 255), 3)
    return cv2.imencode(".jpg", image)[1].tobytes()


JPEGS = [_jpeg(60), _jpeg(120)]


class NoDetections:
    def __init__(self):
        self.manifest = load_manifest(ROOT / "models" / "streetwatch-demo")
        self.frames = 0

    def detect(self, frame: np.ndarray) -> Detections:
        return self.detect_batch([frame])[0]

    def detect_batch(self, frames):
        self.frames += len(frames)
        return [Detections.empty() for _ in frames]


class NullUploader:
    sent = rejected = 0

    def start(self): ...
    def stop(self): ...
    def submit(self, item): ...
    def pending(self): return 0


@pytest.fixture()
def server():
    with SnapshotServer({n: JPEGS for n in ("ok", "pw", "basic", "f1", "f2", "f3", "f4")}, frame_s=0.5) as srv:
        yield srv


def test_digest_and_basic_cameras_are_read_with_one_request_once_the_scheme_is_known(server):
    server.set_auth("pw", "admin", "s3cret:@", "digest")
    server.set_auth("basic", "admin", "pw", "basic")
    with snapshot_client(4) as client:
        digest = HttpSnapshotGrabber(server.url("pw", "admin", "s3cret%3A%40"), client, 2)
        assert digest.grab().shape == (180, 320, 3)
        assert digest.grab().shape == (180, 320, 3)
        assert server.requests["pw"] == 3  # a 401 first, then the nonce is reused
        assert HttpSnapshotGrabber(server.url("basic", "admin", "pw"), client, 2).grab().shape == (180, 320, 3)
        with pytest.raises(GrabError, match=r"401 Unauthorized: the camera refused the credentials \(password "
                                            r"changed\?\)") as info:
            HttpSnapshotGrabber(server.url("pw", "admin", "old"), client, 2).grab()
        assert info.value.reason == "unauthorized" and info.value.kind == "refused"
        assert "old" not in str(info.value)  # the password never reaches the log


@pytest.mark.parametrize("fault, reason, kind, says", [
    ("html", "not_jpeg", "refused", "answered text/html"),
    ("empty", "empty", "refused", "empty answer"),
    ("corrupt", "undecodable", "refused", "cut off|does not decode"),
    ("garbage", "undecodable", "refused", "does not decode"),
    ("hang", "timeout", "missed", "no answer within 0.5s"),
    ("down", "error", "missed", "disconnected"),
])
def test_each_fault_is_a_clear_error(server, fault, reason, kind, says):
    server.set_fault("ok", fault)
    with snapshot_client(2) as client, pytest.raises(GrabError, match=says) as info:
        HttpSnapshotGrabber(server.url("ok"), client, 0.5).grab()
    assert (info.value.reason, info.value.kind) == (reason, kind)


def test_faulty_cameras_get_their_states_log_lines_and_metrics_and_the_others_go_on(server, caplog):
    server.set_auth("pw", "admin", "new-password", "digest")  # the password was changed on the camera
    server.set_fault("f1", "html")
    server.set_fault("f2", "hang")
    server.set_fault("f3", "empty")
    server.set_fault("f4", "garbage")  # a JPEG that does not decode
    urls = {"ok": server.url("ok"), "pw": server.url("pw", "admin", "old-password"), "f1": server.url("f1"),
            "f2": server.url("f2"), "f3": server.url("f3"), "f4": server.url("f4")}
    config = EdgeConfig.model_validate({
        "mode": "http_snapshot", "sample_interval_s": 0.5, "http": {"port": 0},
        "snapshot": {"timeout_s": 0.5, "max_concurrent": 2},
        "cameras": [{"name": n, "snapshot_url": u} for n, u in urls.items()],
    })
    detector = NoDetections()
    edge = EdgePipeline(config, detector=detector, uploader=NullUploader())
    caplog.set_level(logging.WARNING, logger="streetwatch.streams")
    edge.start()
    try:
        def states():
            return {n: c["state"] for n, c in edge.health()["cameras"].items()}

        assert wait_for(lambda: states() == {"ok": "streaming", "pw": "failed", "f1": "failed", "f2": "stalled",
                                             "f3": "failed", "f4": "failed"}, 20), states()
        # the hanging camera holds a slot for its timeout; the good one is still served at its pace
        before = edge.health()["cameras"]["ok"]["frames_analysed"]
        assert wait_for(lambda: edge.health()["cameras"]["ok"]["frames_analysed"] >= before + 4, 10)
        health = edge.health()
        metrics = httpx.get(f"{edge.http.url}/metrics", timeout=5).text
    finally:
        edge.stop()
    cams = health["cameras"]
    assert cams["ok"]["grabs"] >= 4 and cams["ok"]["mode"] == "http_snapshot"
    assert "password changed" in cams["pw"]["last_error"] and "old-password" not in cams["pw"]["last_error"]
    assert "answered text/html" in cams["f1"]["last_error"]
    assert "no answer within" in cams["f2"]["last_error"]
    assert "empty answer" in cams["f3"]["last_error"] and "does not decode" in cams["f4"]["last_error"]
    assert health["snapshots"]["most_in_flight"] <= 2
    assert 'streetwatch_snapshot_failures_total{camera="pw",reason="unauthorized"}' in metrics
    assert 'streetwatch_snapshot_failures_total{camera="f1",reason="not_jpeg"}' in metrics
    assert 'streetwatch_snapshot_failures_total{camera="f2",reason="timeout"}' in metrics
    assert 'streetwatch_snapshot_failures_total{camera="f3",reason="empty"}' in metrics
    assert 'streetwatch_snapshot_failures_total{camera="f4",reason="undecodable"}' in metrics
    assert 'streetwatch_camera_state{camera="f2",state="stalled"} 1.0' in metrics
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for name in ("pw", "f1", "f2", "f3", "f4"):
        assert f"camera {name}: " in logged
    assert detector.frames >= 4
