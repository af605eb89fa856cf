"""RtspReader against a real gst-rtsp-server (streams/rtsp_server.py) serving a looping clip."""

from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pytest

from streams.camera_server import free_port, make_test_clip
from streams.rtsp import RtspReader, StreamOpenError, StreamReadError, StreamStalledError, mask_url
from tests.streams.helpers import CLIP_FPS, CLIP_H, CLIP_SECONDS, CLIP_W

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def test_reader_gets_bgr_frames_of_the_clip_size(server):
    with RtspReader(server.url("cam")) as reader:
        frames = []
        for frame in reader:
            frames.append(frame)
            if len(frames) == 5:
                break
    img = frames[0].image
    assert isinstance(img, np.ndarray) and img.dtype == np.uint8 and img.shape == (CLIP_H, CLIP_W, 3)
    assert frames[0].keyframe  # a client starts at a keyframe, never on grey half-frames
    assert all(f.image.shape == (CLIP_H, CLIP_W, 3) for f in frames)
    assert img.std() > 10  # a test pattern, not a blank frame


def test_stream_loops_forever_with_monotonic_timestamps_and_a_second_client(server):
    """Read 1.5 clip lengths: frames keep coming in real time, timestamps never go back, and a
    client joining half-way (sending `Range: npt=0-` to the shared pipeline) does not rewind it."""
    other: list = []

    def second_client():
        with RtspReader(server.url("cam")) as r2:
            for f in r2:
                other.append(f)
                if len(other) == 10:
                    return

    joiner = threading.Timer(2.0, second_client)
    frames = []
    with RtspReader(server.url("cam")) as reader:
        joiner.start()
        for frame in reader:
            frames.append(frame)
            if frame.captured_at - frames[0].captured_at >= CLIP_SECONDS * 1.5:
                break
    joiner.join(10)
    assert len(other) == 10
    wall = [f.captured_at for f in frames]
    pts = [f.pts_s for f in frames if f.pts_s is not None]
    assert all(b > a for a, b in zip(wall, wall[1:]))
    assert all(b > a for a, b in zip(pts, pts[1:])), "pts went back: the loop (or the joiner) reset the stream"
    assert pts[-1] - pts[0] >= CLIP_SECONDS * 1.4  # the stream clock ran past one clip length
    # Real-time pace, no stall at the loop point (frames buffered while opening come in a burst).
    live = [f for f in frames if f.captured_at > wall[0] + 1.0]
    assert len(live) >= 0.8 * CLIP_FPS * (live[-1].captured_at - live[0].captured_at)
    assert max(b.captured_at - a.captured_at for a, b in zip(live, live[1:])) < 0.5


def test_keyframes_only_mode_decodes_only_keyframes(server):
    with RtspReader(server.url("cam"), keyframes_only=True) as reader:
        frames = []
        for frame in reader:
            frames.append(frame)
            if len(frames) == 4:
                break
    assert all(f.keyframe for f in frames)
    pts = [f.pts_s for f in frames if f.pts_s is not None]
    assert len(pts) >= 3
    assert all(0.9 <= b - a <= 1.1 for a, b in zip(pts, pts[1:]))  # the clip has a keyframe a second


def test_unreachable_camera_fails_fast_with_the_password_masked():
    url = f"rtsp://admin:hunter2@127.0.0.1:{free_port()}/nothing"  # nothing listens there
    start = time.monotonic()
    with pytest.raises(StreamOpenError) as err:
        RtspReader(url, open_timeout_s=2).open()
    assert time.monotonic() - start < 2 + 5
    assert "hunter2" not in str(err.value) and "admin:***@" in str(err.value)
    assert err.value.__cause__ is None  # FFmpeg's exception carries the raw URL: not chained


def test_silent_camera_open_times_out():
    """A TCP port that accepts but never answers RTSP: the open timeout, not FFmpeg's 30 s+."""
    with socket.socket() as blackhole:
        blackhole.bind(("127.0.0.1", 0))
        blackhole.listen(4)
        url = f"rtsp://127.0.0.1:{blackhole.getsockname()[1]}/cam"
        start = time.monotonic()
        with pytest.raises(StreamOpenError, match="no answer"):
            RtspReader(url, open_timeout_s=2, read_timeout_s=2).open()
        assert time.monotonic() - start < 2 + 5


def test_unknown_mount_is_a_clear_open_error(server):
    with pytest.raises(StreamOpenError, match="404"):
        RtspReader(server.url("cam").replace("/cam", "/nope")).open()


def test_frozen_camera_raises_stalled_within_the_read_timeouts(server):
    """The server stops sending but keeps the session open, like a hung encoder."""
    with RtspReader(server.url("frz"), read_timeout_s=1) as reader:
        frames = reader.frames()
        next(frames)
        server.freeze("frz")
        try:
            start = time.monotonic()
            with pytest.raises(StreamStalledError, match="frz"):
                for _ in frames:
                    pass
            assert time.monotonic() - start < 2 * 1 + 3  # FFmpeg holds back one frame until the first timeout
        finally:
            server.resume("frz")


def test_mask_url():
    assert mask_url("rtsp://admin:hunter2@10.0.0.1/ch1") == "rtsp://admin:***@10.0.0.1/ch1"
    assert mask_url("rtsp://admin:p@ss:w0rd@10.0.0.1:554/ch1") == "rtsp://admin:***@10.0.0.1:554/ch1"
    assert mask_url("error opening rtsp://u:x@h/a and rtsp://v:y@h/b") == "error opening rtsp://u:***@h/a and rtsp://v:***@h/b"
    assert mask_url("rtsp://10.0.0.1/ch1") == "rtsp://10.0.0.1/ch1"
    assert mask_url("rtsp://user@10.0.0.1/ch1") == "rtsp://user@10.0.0.1/ch1"


def test_corrupt_frames_are_skipped_not_fatal(tmp_path, rtsp_available):
    clip = make_test_clip(tmp_path / "c.mp4", seconds=4, width=320, height=240, fps=10)
    data = bytearray(clip.read_bytes())
    start = int(len(data) * 0.5)
    data[start:start + 3000] = bytes(3000)  # zero a run of the H.264 payload mid-clip
    clip.write_bytes(bytes(data))
    frames = []
    with RtspReader(str(clip)) as reader:
        with pytest.raises(StreamReadError, match="ended"):  # a file ends; a live camera would go on
            for frame in reader:
                frames.append(frame)
    assert len(frames) >= 25  # most of the 40 frames survive the damage...
    assert frames[-1].pts_s >= 3.8  # ...and decoding goes on to the end
    assert {f.image.shape for f in frames} == {(240, 320, 3)}
