"""The test camera server helper: clips, start-up errors, restart on the same URL."""

from __future__ import annotations

import os

import av
import pytest

from streams.camera_server import CameraServerError, RtspCameraServer, make_test_clip
from streams.rtsp import RtspReader

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def test_make_test_clip_is_camera_like_h264(tmp_path, rtsp_available):
    clip = make_test_clip(tmp_path / "c.mp4", seconds=2, width=320, height=240, fps=10)
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and (stream.width, stream.height) == (320, 240)
        assert stream.codec_context.profile in ("Main", "Constrained Baseline", "Baseline")
        keys = [p.is_keyframe for p in container.demux(stream) if p.size]
    assert len(keys) == 20 and [i for i, k in enumerate(keys) if k] == [0, 10]  # -g = fps


def test_a_clip_the_server_cannot_play_fails_start_with_its_stderr(tmp_path, rtsp_available):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video" * 100)
    with pytest.raises(CameraServerError, match="cannot play"):
        RtspCameraServer({"x": bad}).start()


def test_missing_clip_is_refused_up_front(tmp_path):
    with pytest.raises(FileNotFoundError):
        RtspCameraServer({"x": tmp_path / "nope.mp4"})


def test_restart_serves_again_on_the_same_url(clip):
    with RtspCameraServer({"a": clip, "b": clip}) as srv:
        url = srv.url("b")
        assert url == f"rtsp://127.0.0.1:{srv.port}/b"
        with RtspReader(url) as reader:
            next(iter(reader))
        srv.restart()
        assert srv.url("b") == url and srv.running
        with RtspReader(url) as reader:
            assert next(iter(reader)).image.shape == (360, 640, 3)
        pid = srv.proc.pid
    assert srv.proc is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
