"""Live RTSP test cameras from MP4 clips, for tests, the demo and benchmarks.

gst-rtsp-server is reached through GObject introspection, which Debian installs for the
system Python only, so the server (streams/rtsp_server.py) runs as a helper process under
/usr/bin/python3; this module starts, stops and controls it from the project's venv.

    with RtspCameraServer({"cam1": make_test_clip(tmp / "a.mp4")}) as cams:
        url = cams.url("cam1")        # rtsp://127.0.0.1:PORT/cam1, loops forever
        cams.freeze("cam1")           # the session stays open, no more frames
        cams.resume("cam1")
        cams.stop(); cams.start()     # the camera goes away and comes back (same URL)
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Mapping

SYSTEM_PYTHON = os.environ.get("STREETWATCH_GI_PYTHON", "/usr/bin/python3")
SERVER_SCRIPT = Path(__file__).with_name("rtsp_server.py")


class CameraServerError(RuntimeError):
    pass


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (nothing listens on it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_test_clip(path: Path | str, seconds: float = 4, width: int = 640, height: int = 360, fps: int = 10) -> Path:
    """An H.264 (Main profile, no B-frames, like most IP cameras) test-pattern MP4, one keyframe a second."""
    if shutil.which("ffmpeg") is None:
        raise CameraServerError("ffmpeg not found: install Debian's ffmpeg (scripts/bootstrap.sh does)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi",
           "-i", f"testsrc=size={width}x{height}:rate={fps}:duration={seconds}",
           "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "main", "-bf", "0", "-g", str(fps),
           "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(path)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise CameraServerError(f"ffmpeg could not make {path}: {done.stderr.strip()}")
    return path


class RtspCameraServer:
    """Serves each clip as a looping live camera at rtsp://127.0.0.1:PORT/<name>.

    `port=None` picks a free port once; stop()/start()/restart() keep it, so URLs stay valid.
    """

    def __init__(self, clips: Mapping[str, Path | str], port: int | None = None, start_timeout_s: float = 15,
                 stagger_s: float = 0.0, shared: bool = True, protocols: str = "tcp+udp"):
        if not clips:
            raise ValueError("RtspCameraServer needs at least one clip")
        self.clips = {name: Path(p).resolve() for name, p in clips.items()}
        for name, clip in self.clips.items():
            if not name or "/" in name or "=" in name:
                raise ValueError(f"bad camera name {name!r}")
            if not clip.is_file():
                raise FileNotFoundError(f"clip for camera {name!r} not found: {clip}")
        self._port_given = port is not None
        self.port = port if port is not None else free_port()
        self.start_timeout_s = start_timeout_s
        self.stagger_s = stagger_s  # mount i starts i × stagger_s into its clip: cameras out of step
        # shared=False: a media per client (snapshot grabs come and go every few seconds);
        # protocols="udp": RTP over UDP only, a camera that answers SETUP over TCP with 461.
        self.shared, self.protocols = shared, protocols
        self.proc: subprocess.Popen | None = None
        self._stderr = None

    def url(self, name: str) -> str:
        if name not in self.clips:
            raise KeyError(f"no camera {name!r}; have {sorted(self.clips)}")
        return f"rtsp://127.0.0.1:{self.port}/{name}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> "RtspCameraServer":
        if self.running:
            return self
        for attempt in range(3):
            try:
                self._start_once()
                return self
            except CameraServerError as exc:
                # A port picked by free_port() can be taken before the server binds it.
                if self._port_given or "cannot listen" not in str(exc) or attempt == 2:
                    raise
                self.port = free_port()
        return self

    def _start_once(self) -> None:
        cmd = [SYSTEM_PYTHON, str(SERVER_SCRIPT), "--port", str(self.port), "--exit-on-stdin-eof",
               "--stagger", str(self.stagger_s), "--protocols", self.protocols] + ([] if self.shared else ["--unshared"])
        for name, clip in self.clips.items():
            cmd += ["--mount", f"{name}={clip}"]
        # stderr goes to a file, not a pipe: a pipe nobody reads would fill up and hang the server.
        self._stderr = tempfile.TemporaryFile(mode="w+b", prefix="streetwatch-rtsp-")
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                                         start_new_session=True)  # its own process group, killed as one
        except OSError as exc:
            raise CameraServerError(f"cannot run {SYSTEM_PYTHON} (needs python3-gi and "
                                    f"gir1.2-gst-rtsp-server-1.0): {exc}") from exc
        line = self._wait_ready()
        if line != "READY":
            err = self._stderr_text()
            why = "exited" if self.proc.poll() is not None else "did not become ready"
            self._kill()
            raise CameraServerError(f"RTSP camera server on port {self.port} {why} (waited up to {self.start_timeout_s:g}s for READY; "
                                    f"stdout {line!r}); its stderr:\n{err.strip() or '(empty)'}")

    def _wait_ready(self) -> str:
        deadline = time.monotonic() + self.start_timeout_s
        buf = b""
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            while b"\n" not in buf:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    return buf.decode(errors="replace").strip()
                chunk = os.read(self.proc.stdout.fileno(), 1024)
                if not chunk:  # it exited
                    self.proc.wait(5)
                    return buf.decode(errors="replace").strip()
                buf += chunk
        return buf.split(b"\n", 1)[0].decode(errors="replace").strip()

    def _stderr_text(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")[-4000:]

    @property
    def stderr(self) -> str:
        """What the server has logged so far (the last 4000 characters)."""
        return self._stderr_text()

    def _command(self, line: str) -> None:
        if not self.running:
            raise CameraServerError("the RTSP camera server is not running")
        self.proc.stdin.write(f"{line}\n".encode())
        self.proc.stdin.flush()

    def freeze(self, name: str | None = None) -> None:
        """Stop sending frames on one camera (or all) while keeping the RTSP sessions open."""
        if name is not None:
            self.url(name)  # KeyError for an unknown camera
        self._command(f"freeze {name or ''}".strip())

    def resume(self, name: str | None = None) -> None:
        if name is not None:
            self.url(name)
        self._command(f"resume {name or ''}".strip())

    def stop(self) -> None:
        """Stop the server (clients see their connections close). Idempotent."""
        self._kill()

    def _kill(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.poll() is None:
                self._signal(proc, signal.SIGTERM)
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    self._signal(proc, signal.SIGKILL)
                    proc.wait(5)
            for stream in (proc.stdin, proc.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
        if self._stderr is not None and proc is not None:
            self._stderr.close()
            self._stderr = None

    @staticmethod
    def _signal(proc: subprocess.Popen, sig: int) -> None:
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def restart(self) -> "RtspCameraServer":
        self.stop()
        return self.start()

    close = stop

    def __enter__(self) -> "RtspCameraServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __del__(self) -> None:
        try:
            self._kill()
        except Exception:
            pass
