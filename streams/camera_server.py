"""Start the RTSP camera server (streams/rtsp_server.py) from the project's virtualenv.

gst-rtsp-server is reached through GObject introspection, which Debian installs for the
system Python only, so the server runs as a helper process under /usr/bin/python3.
"""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

SYSTEM_PYTHON = os.environ.get("STREETWATCH_GI_PYTHON", "/usr/bin/python3")
SERVER_SCRIPT = Path(__file__).with_name("rtsp_server.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clip_seconds(path: Path) -> float:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def loop_clip(clip: Path, out: Path, minutes: float) -> Path:
    """Repeat a clip back to back without re-encoding, so the served stream lasts `minutes`.

    Timestamps continue across repeats, so clients see one continuous live stream.
    """
    repeats = max(0, math.ceil(minutes * 60 / clip_seconds(clip)) - 1)
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-stream_loop", str(repeats), "-i", str(clip),
                    "-c", "copy", str(out)], check=True)
    return out


def make_test_clip(path: Path, seconds: float = 4, width: int = 640, height: int = 360, fps: int = 10) -> Path:
    """An H.264 test-pattern clip with one keyframe a second."""
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc=size={width}x{height}:rate={fps}:duration={seconds}", "-c:v", "libx264",
                    "-preset", "veryfast", "-g", str(fps), "-pix_fmt", "yuv420p", str(path)], check=True)
    return path


class RtspCameraServer:
    """`with RtspCameraServer({"cam1": clip}) as srv: srv.url("cam1")` serves each clip on loop."""

    def __init__(self, clips: dict[str, Path], port: int | None = None, loop_minutes: float = 30,
                 start_timeout_s: float = 15):
        self.clips = {name: Path(p) for name, p in clips.items()}
        self.port = port or free_port()
        self.loop_minutes = loop_minutes
        self.start_timeout_s = start_timeout_s
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._served: dict[str, Path] = {}
        self.proc: subprocess.Popen | None = None

    def url(self, name: str) -> str:
        return f"rtsp://127.0.0.1:{self.port}/{name}"

    def start(self) -> "RtspCameraServer":
        if not self._served:
            self._tmp = tempfile.TemporaryDirectory(prefix="streetwatch-rtsp-")
            for name, clip in self.clips.items():
                if not clip.is_file():
                    raise FileNotFoundError(f"clip for camera {name!r} not found: {clip}")
                self._served[name] = loop_clip(clip, Path(self._tmp.name) / f"{name}.mp4", self.loop_minutes)
        cmd = [SYSTEM_PYTHON, str(SERVER_SCRIPT), "--port", str(self.port)]
        for name, path in self._served.items():
            cmd += ["--mount", f"{name}={path}"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True)
        deadline = time.monotonic() + self.start_timeout_s
        line = self.proc.stdout.readline()  # READY, or EOF when it failed
        if line.strip() != "READY" or time.monotonic() > deadline:
            err = self.proc.stderr.read() if self.proc.poll() is not None else ""
            self.stop()
            raise RuntimeError(f"RTSP server did not start on port {self.port}: {err.strip() or line.strip()}")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp, self._served = None, {}

    def __enter__(self) -> "RtspCameraServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()
