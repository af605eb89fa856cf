"""CameraWorker: sampling, fault detection and recovery against a real RTSP server."""

from __future__ import annotations

import logging
import threading
import time

import pytest

import streams.camera as camera_mod
from streams.camera import CameraWorker
from streams.camera_server import RtspCameraServer, free_port
from streams.rtsp import StreamOpenError
from tests.streams.helpers import CLIP_H, CLIP_W, wait_for

FAST = dict(open_timeout_s=2, read_timeout_s=2, stall_timeout_s=3, backoff_initial_s=0.2, backoff_max_s=1)


class Collector:
    def __init__(self):
        self.times: list[float] = []
        self.shapes: set = set()

    def __call__(self, name, frame):
        assert name == "cam"
        self.times.append(time.monotonic())
        self.shapes.add(frame.image.shape)


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_worker_samples_at_the_interval_and_recovers_after_camera_restart(clip):
    got = Collector()
    with RtspCameraServer({"cam": clip}) as srv:
        worker = CameraWorker("cam", srv.url("cam"), 0.5, got, **FAST)
        worker.start()
        try:
            assert wait_for(lambda: worker.health.state == "streaming", 10), worker.health
            window_start = time.monotonic()
            time.sleep(4.0)
            in_window = [t for t in got.times if window_start <= t < window_start + 4.0]
            assert 6 <= len(in_window) <= 10, in_window  # 8 expected: one frame per 0.5 s, not all 40
            assert all(b - a >= 0.3 for a, b in zip(got.times, got.times[1:]))
            assert got.shapes == {(CLIP_H, CLIP_W, 3)}
            h = worker.health
            assert h.frames_decoded >= 30 and h.frames_sampled == len(got.times) and h.reconnects == 0

            srv.stop()  # the camera goes away: reconnecting at once, stalled once no frame came for 3 s
            gone = time.monotonic()
            assert wait_for(lambda: worker.health.state == "reconnecting", 2), worker.health
            assert wait_for(lambda: "Connection refused" in (worker.health.last_error or ""), 5), worker.health
            assert wait_for(lambda: worker.health.state == "stalled", 10), worker.health
            assert time.monotonic() - gone >= 2.5
            n = len(got.times)
            srv.start()  # ...and comes back on the same URL
            assert wait_for(lambda: worker.health.state == "streaming" and len(got.times) >= n + 3, 15), worker.health
            assert worker.health.reconnects >= 1
        finally:
            assert worker.stop(timeout=5)
    assert worker.health.state == "stopped"


@pytest.mark.integration
@pytest.mark.timeout(60)
@pytest.mark.parametrize("reader", [{}, {"decode_mode": "auto", "rtsp_client": "native"}], ids=["ffmpeg", "native"])
def test_worker_detects_a_frozen_camera_and_recovers(server, reader):
    got = Collector()
    worker = CameraWorker("cam", server.url("frz"), 0.5, got, **FAST, **reader)
    assert worker.native == bool(reader)
    worker.start()
    try:
        assert wait_for(lambda: worker.health.state == "streaming", 10), worker.health
        server.freeze("frz")
        frozen_at = time.monotonic()
        assert wait_for(lambda: worker.health.state == "stalled", 3 + 5), worker.health
        assert time.monotonic() - frozen_at >= 1.0  # not before it had a chance to see the freeze
        n = len(got.times)
        server.resume("frz")
        assert wait_for(lambda: worker.health.state == "streaming" and len(got.times) > n + 2, 15), worker.health
    finally:
        server.resume("frz")
        worker.stop(timeout=5)


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_a_failing_frame_handler_never_kills_the_worker(server, caplog):
    calls = []

    def broken(name, frame):
        calls.append(frame)
        raise RuntimeError("consumer bug")

    worker = CameraWorker("cam", server.url("cam"), 0.2, broken, **FAST)
    with caplog.at_level(logging.ERROR, logger="streetwatch.streams"):
        worker.start()
        try:
            assert wait_for(lambda: len(calls) >= 5, 15), worker.health
            assert worker.health.state == "streaming" and worker.health.handler_errors >= 5
        finally:
            worker.stop(timeout=5)
    failures = [r for r in caplog.records if "frame handler failed" in r.getMessage()]
    assert len(failures) == 1 and failures[0].exc_info  # one traceback, not one per frame


@pytest.mark.timeout(30)
def test_unreachable_camera_retries_with_backoff_one_line_per_attempt_and_stops_promptly(caplog):
    url = f"rtsp://admin:hunter2@127.0.0.1:{free_port()}/gone"
    worker = CameraWorker("gate-3", url, 1.0, lambda n, f: None, open_timeout_s=1, backoff_initial_s=0.1,
                          backoff_max_s=0.4)
    with caplog.at_level(logging.INFO, logger="streetwatch.streams"):
        worker.start()
        assert wait_for(lambda: worker.health.reconnects >= 3, 10), worker.health
        start = time.monotonic()
        assert worker.stop(timeout=5)
        assert time.monotonic() - start < 1.5
    h = worker.health
    assert h.state == "stopped" and h.frames_decoded == 0 and "Connection refused" in h.last_error
    lines = [r for r in caplog.records if r.name == "streetwatch.streams"]
    attempts = [r for r in lines if "cannot open" in r.getMessage()]
    assert len(attempts) >= 3 and len(attempts) >= len(lines) - 1
    for r in lines:
        assert "gate-3" in r.getMessage() and "hunter2" not in r.getMessage() and r.exc_info is None


def test_backoff_is_exponential_with_full_jitter_and_capped():
    w = CameraWorker("c", "rtsp://127.0.0.1:1/x", 1.0, lambda n, f: None, backoff_initial_s=1, backoff_max_s=30)
    for attempt, cap in [(0, 1), (1, 2), (3, 8), (10, 30)]:
        waits = [w._backoff(attempt) for _ in range(300)]
        assert max(waits) <= cap and min(waits) >= 0.1
        assert max(waits) > 0.8 * cap and min(waits) < 0.3 * cap  # spread over the range: full jitter


@pytest.mark.timeout(30)
def test_watchdog_abandons_a_capture_blocked_past_its_timeouts(monkeypatch):
    """Some FFmpeg paths ignore the timeouts: the watchdog must still get the camera going."""
    release = threading.Event()
    opened = []

    class StuckThenRefused:
        def __init__(self, url, *args, **kwargs):
            self.corrupt_packets = 0

        def open(self):
            opened.append(time.monotonic())
            if len(opened) == 1:
                release.wait(20)  # stuck inside FFmpeg, deaf to its own timeout
            raise StreamOpenError("cannot open rtsp://127.0.0.1/x: Connection refused")

        def cancel(self):
            pass

        def close(self):
            pass

    monkeypatch.setattr(camera_mod, "RtspReader", StuckThenRefused)
    monkeypatch.setattr(camera_mod, "_WATCHDOG_GRACE_S", 0.5)
    worker = CameraWorker("cam", "rtsp://127.0.0.1/x", 1.0, lambda n, f: None, open_timeout_s=0.5,
                          backoff_initial_s=0.1, backoff_max_s=0.2)
    worker.start()
    try:
        assert wait_for(lambda: len(opened) >= 2, 5), worker.health
        assert 0.9 <= opened[1] - opened[0] < 3
        assert wait_for(lambda: worker.health.state == "reconnecting", 2)
    finally:
        release.set()
        assert worker.stop(timeout=5)
