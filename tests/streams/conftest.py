"""Fixtures for the camera-ingestion tests: a short H.264 clip and a real gst-rtsp-server
(streams/rtsp_server.py, run under the system Python) serving it as live cameras."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.camera_server import SYSTEM_PYTHON, RtspCameraServer, make_test_clip
from tests.streams.helpers import CLIP_FPS, CLIP_H, CLIP_SECONDS, CLIP_W


def _rtsp_server_missing() -> str | None:
    if shutil.which("ffmpeg") is None:
        return "ffmpeg is not installed"
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0'); "
                            "from gi.repository import GstRtspServer"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"{SYSTEM_PYTHON} lacks gi/GstRtspServer (python3-gi, gir1.2-gst-rtsp-server-1.0)"
    return None


@pytest.fixture(scope="session")
def rtsp_available() -> None:
    missing = _rtsp_server_missing()
    if missing:
        pytest.fail(missing)  # scripts/bootstrap.sh installs them: a missing one is a failure, not a skip


@pytest.fixture(scope="module")
def clip(tmp_path_factory, rtsp_available) -> Path:
    return make_test_clip(tmp_path_factory.mktemp("clip") / "test.mp4", seconds=CLIP_SECONDS, width=CLIP_W,
                          height=CLIP_H, fps=CLIP_FPS)


@pytest.fixture(scope="module")
def server(clip) -> Iterator[RtspCameraServer]:
    """`cam` for plain reading, `frz` for tests that freeze their camera."""
    with RtspCameraServer({"cam": clip, "frz": clip}) as srv:
        yield srv

