"""rtsp_snapshot grabs and rtsp_transport against real gst-rtsp-server cameras on loopback:
one that offers TCP and UDP, and one that offers RTP over UDP only (answers SETUP over TCP
with 461, as VLC 3.0 does)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from streams.camera import CameraWorker
from streams.camera_server import RtspCameraServer, free_port
from streams.config import EdgeConfig
from streams.grab import GrabError
from streams.pipeline import EdgePipeline
from streams.rtsp import RtspReader, StreamOpenError
from streams.snapshot_rtsp import RtspSnapshotGrabber
from tests.streams.helpers import CLIP_H, CLIP_W, wait_for
from tests.streams.test_snapshot_http import NoDetections, NullUploader

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cams(clip):
    # a media per client: grabs come and go every second
    with RtspCameraServer({"cam": clip, "frz": clip}, shared=False) as srv:
        yield srv


@pytest.fixture(scope="module")
def udp_only(clip):
    with RtspCameraServer({"cam": clip}, protocols="udp", shared=False) as srv:
        yield srv


@pytest.mark.parametrize("client", ["native", "ffmpeg"])
def test_a_grab_is_the_first_keyframe_decoded_alone(cams, client):
    grabber = RtspSnapshotGrabber(cams.url("cam"), "tcp", client, open_timeout_s=5, keyframe_timeout_s=5)
    for _ in range(2):  # nothing is held between grabs
        image = grabber.grab()
        assert image.shape == (CLIP_H, CLIP_W, 3) and image.dtype == np.uint8 and image.std() > 10


def test_wrong_path_is_refused_and_a_dead_camera_is_missed(cams):
    with pytest.raises(GrabError, match="404") as info:
        RtspSnapshotGrabber(cams.url("cam") + "-nope", open_timeout_s=3).grab()
    assert (info.value.reason, info.value.kind) == ("rtsp_refused", "refused")
    with pytest.raises(GrabError, match="Connection refused") as info:
        RtspSnapshotGrabber(f"rtsp://127.0.0.1:{free_port()}/gone", open_timeout_s=3).grab()
    assert (info.value.reason, info.value.kind) == ("unreachable", "missed")


def test_a_frozen_camera_is_a_missed_grab_bounded_by_the_timeouts(cams):
    cams.freeze("frz")
    try:
        started = time.monotonic()
        with pytest.raises(GrabError) as info:
            RtspSnapshotGrabber(cams.url("frz"), open_timeout_s=2, keyframe_timeout_s=2).grab()
        assert time.monotonic() - started < 6
        assert info.value.kind == "missed" and info.value.reason in ("timeout", "no_keyframe")
    finally:
        cams.resume("frz")


def test_udp_only_camera_with_tcp_says_what_it_offers(udp_only):
    with pytest.raises(GrabError, match=r"461 Unsupported transport .*offers RTP over UDP only; set "
                                        r"rtsp_transport: udp") as info:
        RtspSnapshotGrabber(udp_only.url("cam"), "tcp", "native", open_timeout_s=3).grab()
    assert info.value.kind == "refused"
    with pytest.raises(StreamOpenError, match="refused RTP over TCP.*set rtsp_transport: udp"):
        RtspReader(udp_only.url("cam"), 3, 3, "tcp").open()


@pytest.mark.parametrize("client, transport", [("native", "auto"), ("ffmpeg", "auto"), ("ffmpeg", "udp")])
def test_udp_only_camera_is_grabbed_over_udp(udp_only, client, transport):
    grabber = RtspSnapshotGrabber(udp_only.url("cam"), transport, client, open_timeout_s=3, keyframe_timeout_s=5)
    assert grabber.grab().shape == (CLIP_H, CLIP_W, 3)
    assert grabber.transport == "udp"  # remembered: the next grab does not try TCP first
    assert grabber.grab().shape == (CLIP_H, CLIP_W, 3)


@pytest.mark.parametrize("client", ["native", "ffmpeg"])
def test_udp_only_camera_streams_with_auto(udp_only, client):
    frames = []
    worker = CameraWorker("u", udp_only.url("cam"), 0.5, lambda name, frame: frames.append(frame), open_timeout_s=3,
                          read_timeout_s=3, stall_timeout_s=6, transport="auto", decode_mode="auto",
                          rtsp_client=client)
    worker.start()
    try:
        assert wait_for(lambda: len(frames) >= 2, 30), worker.health
        assert worker.health.state == "streaming" and worker.transport in ("udp", "auto")
    finally:
        worker.stop()


def test_udp_only_camera_with_tcp_is_failed_with_the_reason(udp_only):
    worker = CameraWorker("u", udp_only.url("cam"), 1.0, lambda *a: None, open_timeout_s=3, read_timeout_s=3,
                          stall_timeout_s=6, backoff_initial_s=0.5, backoff_max_s=1, transport="tcp",
                          decode_mode="auto", rtsp_client="native")
    worker.start()
    try:
        assert wait_for(lambda: worker.health.state == "failed", 20), worker.health
        assert "461" in worker.health.last_error and "rtsp_transport: udp" in worker.health.last_error
    finally:
        worker.stop()


def test_rtsp_snapshot_cameras_in_the_pipeline_and_a_dead_one_is_stalled_after_two_missed_grabs(cams, udp_only):
    config = EdgeConfig.model_validate({
        "mode": "rtsp_snapshot", "sample_interval_s": 1.5, "http": None,
        "snapshot": {"timeout_s": 2, "keyframe_timeout_s": 3, "keep_session_below_s": 0},
        "cameras": [{"name": "tcp", "url": cams.url("cam")}, {"name": "udp", "url": udp_only.url("cam")},
                    {"name": "dead", "url": f"rtsp://127.0.0.1:{free_port()}/gone"}],
    })
    detector = NoDetections()
    edge = EdgePipeline(config, detector=detector, uploader=NullUploader())
    edge.start()
    try:
        def cam(name):
            return edge.health()["cameras"][name]

        assert wait_for(lambda: cam("tcp")["frames_analysed"] >= 3 and cam("udp")["frames_analysed"] >= 3, 40), \
            edge.health()["cameras"]
        assert wait_for(lambda: cam("dead")["state"] == "stalled", 15)
        assert cam("dead")["grab_failures"]["unreachable"] >= 2
        assert cam("tcp")["state"] == "streaming" and cam("tcp")["mode"] == "rtsp_snapshot"
        assert edge.cameras["tcp"].tracker is None  # sparse: confirmed by region
    finally:
        edge.stop()


@pytest.fixture(scope="module")
def long_gop(tmp_path_factory, rtsp_available):
    """A camera whose keyframes are 20 s apart (one per loop of its clip), served shared: a
    client that joins a running stream gets video at once but waits up to 20 s for a keyframe."""
    path = tmp_path_factory.mktemp("long-gop") / "long-gop.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi",
                    "-i", "testsrc=size=320x180:rate=10:duration=20", "-c:v", "libx264", "-preset", "veryfast",
                    "-profile:v", "main", "-bf", "0", "-g", "1000", "-sc_threshold", "0", "-pix_fmt", "yuv420p",
                    str(path)], check=True)
    with RtspCameraServer({"cam": path}) as srv:
        yield srv


def test_a_keyframe_that_never_comes_within_the_gop_limit_is_a_missed_grab_and_the_camera_stalls(long_gop, cams):
    # Someone already watches the camera, so the stream is running mid-GOP when the grabs join.
    # (Its first frame waits for the clip's one keyframe: up to 20 s of silence after PLAY.)
    frames = []
    watcher = CameraWorker("watcher", long_gop.url("cam"), 0.5, lambda name, frame: frames.append(frame),
                           open_timeout_s=25, read_timeout_s=25, stall_timeout_s=30, decode_mode="all")
    watcher.start()
    config = EdgeConfig.model_validate({
        "mode": "rtsp_snapshot", "sample_interval_s": 1.0, "http": {"port": 0},
        "snapshot": {"timeout_s": 2, "keyframe_timeout_s": 1.5, "keep_session_below_s": 0},
        "cameras": [{"name": "ok", "url": cams.url("cam")}, {"name": "gop", "url": long_gop.url("cam")}],
    })
    edge = EdgePipeline(config, detector=NoDetections(), uploader=NullUploader())
    try:
        assert wait_for(lambda: frames, 25), watcher.health  # the watcher saw the keyframe: mid-GOP from here
        started = time.monotonic()
        with pytest.raises(GrabError, match=r"video but no keyframe within 1.5s \(the GOP limit\)") as info:
            RtspSnapshotGrabber(long_gop.url("cam"), "tcp", "native", open_timeout_s=3, keyframe_timeout_s=1.5).grab()
        assert (info.value.reason, info.value.kind) == ("no_keyframe", "missed")
        assert time.monotonic() - started < 4  # bounded by the limit, not by the 20 s GOP

        edge.start()

        def cam(name):
            return edge.health()["cameras"][name]

        # two missed grabs: stalled, within the GOP (no keyframe before 20 s after the watcher's)
        assert wait_for(lambda: cam("gop")["state"] == "stalled", 12), cam("gop")
        assert cam("gop")["grab_failures"]["no_keyframe"] >= 2 and "GOP limit" in cam("gop")["last_error"]
        assert cam("ok")["state"] == "streaming" and cam("ok")["frames_analysed"] >= 1
        metrics = httpx.get(f"{edge.http.url}/metrics", timeout=5).text
        assert 'streetwatch_snapshot_failures_total{camera="gop",reason="no_keyframe"}' in metrics
        assert 'streetwatch_camera_state{camera="gop",state="stalled"} 1.0' in metrics
    finally:
        edge.stop()
        watcher.stop()


@pytest.mark.parametrize("client", ["native", "ffmpeg"])
def test_a_camera_that_accepts_the_connection_and_never_answers_is_a_missed_grab_within_the_timeout(client):
    import socket

    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts (the kernel's backlog), never answers
        url = f"rtsp://127.0.0.1:{silent.getsockname()[1]}/cam"
        started = time.monotonic()
        with pytest.raises(GrabError) as info:
            RtspSnapshotGrabber(url, "tcp", client, open_timeout_s=1.5, keyframe_timeout_s=1.5).grab()
        assert time.monotonic() - started < 5
        assert info.value.kind == "missed" and info.value.reason == "timeout", (info.value.reason, str(info.value))
        assert "no answer within" in str(info.value)
