"""The edge supervisor against real gst-rtsp-server cameras: one camera killed and restarted,
one frozen with its connection open, while two others keep streaming. Health states and
recovery are checked (on /healthz too); how fast is the benchmark's job, not the tests'."""

from __future__ import annotations

import time

from pathlib import Path

import httpx
import numpy as np
import pytest

from streams.camera_server import RtspCameraServer
from streams.config import EdgeConfig
from streams.pipeline import EdgePipeline
from tests.streams.helpers import wait_for
from vision.detections import Detections
from vision.manifest import load_manifest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


class NoDetections:
    """The pipeline's plumbing without a model: these tests are about cameras."""

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


def test_killed_and_frozen_cameras_recover_and_others_are_unaffected(clip):
    with RtspCameraServer({"s1": clip, "s2": clip, "frz": clip}) as steady, RtspCameraServer({"kil": clip}) as doomed:
        urls = {n: steady.url(n) for n in ("s1", "s2", "frz")} | {"kil": doomed.url("kil")}
        config = EdgeConfig.model_validate({
            "sample_interval_s": 1.0, "open_timeout_s": 3, "read_timeout_s": 3, "stall_timeout_s": 6,
            "backoff_initial_s": 0.5, "backoff_max_s": 3, "http": {"port": 0},
            "cameras": [{"name": n, "url": u} for n, u in urls.items()],
        })
        edge = EdgePipeline(config, detector=NoDetections(), uploader=NullUploader())
        edge.start()
        try:
            health = lambda: edge.health()["cameras"]  # noqa: E731
            analysed = lambda name: health()[name]["frames_analysed"]  # noqa: E731
            assert wait_for(lambda: all(c["state"] == "streaming" and c["frames_analysed"] > 0
                                        for c in health().values()), 30), health()

            steady.freeze("frz")
            doomed.stop()
            outage = time.monotonic()
            before = {n: analysed(n) for n in ("s1", "s2")}
            # The bound for both: stalled within 10 s of the camera going silent.
            for name in ("frz", "kil"):
                left = 10 - (time.monotonic() - outage)
                assert wait_for(lambda: health()[name]["state"] == "stalled", max(0.1, left)), (name, health()[name])
            served = httpx.get(f"{edge.http.url}/healthz", timeout=5).json()["cameras"]
            assert served["frz"]["state"] == served["kil"]["state"] == "stalled"
            assert served["s1"]["state"] == served["s2"]["state"] == "streaming"
            # the other cameras kept being analysed through the outage
            assert all(analysed(n) >= before[n] + 3 for n in ("s1", "s2")), health()
            metrics = httpx.get(f"{edge.http.url}/metrics", timeout=5).text
            assert 'streetwatch_camera_state{camera="kil",state="streaming"} 0.0' in metrics

            stuck = {n: analysed(n) for n in ("frz", "kil")}
            steady.resume("frz")
            doomed.start()
            assert wait_for(lambda: all(health()[n]["state"] == "streaming" and analysed(n) > stuck[n]
                                        for n in ("frz", "kil")), 40), health()
            assert health()["kil"]["reconnects"] >= 1 and health()["frz"]["reconnects"] >= 1
            assert 'streetwatch_camera_reconnects_total{camera="kil"}' in httpx.get(f"{edge.http.url}/metrics").text
        finally:
            edge.stop()
