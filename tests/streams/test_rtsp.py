"""RTSP reading and the camera worker against a real gst-rtsp-server."""

from __future__ import annotations

import time

import pytest

from streams.camera import CameraWorker
from streams.camera_server import RtspCameraServer, free_port, make_test_clip
from streams.rtsp import RtspReader, StreamOpenError, mask_url
from streams.sampler import FrameSampler

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_test_clip(tmp_path_factory.mktemp("clip") / "test.mp4", seconds=4, width=320, height=240, fps=10)


@pytest.fixture(scope="module")
def server(clip):
    with RtspCameraServer({"cam": clip}, loop_minutes=2) as srv:
        yield srv


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def test_reader_gets_frames_past_one_clip_length(server):
    with RtspReader(server.url("cam")) as reader:
        start = time.time()
        frames = []
        for frame in reader.frames():
            frames.append(frame)
            if frame.pts_s is not None and frame.pts_s > 5:  # the clip is 4 s long: it looped
                break
            assert time.time() - start < 30
    assert frames[0].image.shape == (240, 320, 3)
    pts = [f.pts_s for f in frames if f.pts_s is not None]
    assert pts == sorted(pts) and pts[-1] > 5


def test_keyframes_only_mode(server):
    with RtspReader(server.url("cam"), keyframes_only=True) as reader:
        frames = []
        for frame in reader.frames():
            frames.append(frame)
            if len(frames) == 5:
                break
    assert all(f.keyframe for f in frames)
    pts = [f.pts_s for f in frames if f.pts_s is not None]
    assert len(pts) >= 3
    gaps = [b - a for a, b in zip(pts, pts[1:])]
    assert all(g >= 0.9 for g in gaps)  # one keyframe a second in the test clip


def test_unreachable_camera_fails_fast():
    url = f"rtsp://user:pw@127.0.0.1:{free_port()}/nothing"
    start = time.monotonic()
    with pytest.raises(StreamOpenError) as err:
        RtspReader(url, open_timeout_s=2).open()
    assert time.monotonic() - start < 2 + 5
    assert "pw" not in str(err.value) and "***" in str(err.value)


def test_worker_samples_and_recovers_after_camera_restart(clip):
    got: list[float] = []
    with RtspCameraServer({"cam": clip}, loop_minutes=2) as srv:
        worker = CameraWorker("cam", srv.url("cam"), 0.5, lambda name, f: got.append(f.captured_at),
                              open_timeout_s=2, read_timeout_s=2, stall_timeout_s=3, backoff_initial_s=0.2,
                              backoff_max_s=1)
        worker.start()
        try:
            assert wait_for(lambda: len(got) >= 6, 20), worker.health
            assert worker.health.state == "streaming"
            intervals = [b - a for a, b in zip(got[1:], got[2:])]
            assert all(iv >= 0.4 for iv in intervals), intervals  # one frame per 0.5 s, not every frame
            srv.stop()
            assert wait_for(lambda: worker.health.state in ("reconnecting", "stalled"), 15), worker.health
            n = len(got)
            srv.start()
            assert wait_for(lambda: worker.health.state == "streaming" and len(got) > n + 2, 20), worker.health
            assert worker.health.reconnects >= 1
        finally:
            worker.stop()
    assert worker.health.state == "stopped"


def test_sampler():
    s = FrameSampler(1.0)
    taken = [t for t in [0.0, 0.1, 0.5, 0.99, 1.0, 1.5, 2.2, 2.3] if s.should_take(t)]
    assert taken == [0.0, 1.0, 2.2]
    assert s.should_take(-10.0)  # clock jumped back: start over


def test_mask_url():
    assert mask_url("rtsp://admin:hunter2@10.0.0.1/ch1") == "rtsp://admin:***@10.0.0.1/ch1"
    assert mask_url("rtsp://10.0.0.1/ch1") == "rtsp://10.0.0.1/ch1"


def test_corrupt_frames_are_skipped_not_fatal(tmp_path):
    clip = make_test_clip(tmp_path / "c.mp4", seconds=4, width=320, height=240, fps=10)
    data = bytearray(clip.read_bytes())
    start = int(len(data) * 0.5)
    data[start:start + 3000] = bytes(3000)  # zero a run of the H.264 payload mid-clip
    clip.write_bytes(bytes(data))
    reader = RtspReader(str(clip))
    frames = []
    with pytest.raises(Exception) as end:  # the file ends; a live camera would go on
        for frame in reader.frames():
            frames.append(frame.image.shape)
    reader.close()
    assert "ended" in str(end.value)
    assert len(frames) >= 30  # most of the 40 frames survive, including those after the damage
