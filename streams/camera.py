"""One thread per camera: read, sample, hand frames on; reconnect with backoff when it fails.

Like Frigate's per-camera capture with its watchdog, a camera that dies, freezes or never
answers only ever affects itself.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass
from typing import Callable

from streams.rtsp import Frame, RtspReader, StreamError, mask_url
from streams.sampler import FrameSampler

log = logging.getLogger("streetwatch.streams")

STATES = ("starting", "streaming", "stalled", "reconnecting", "failed", "stopped")


@dataclass
class CameraHealth:
    state: str = "starting"
    last_frame_at: float | None = None
    frames_decoded: int = 0
    frames_sampled: int = 0
    reconnects: int = 0
    last_error: str | None = None


class CameraWorker:
    def __init__(self, name: str, url: str, sample_interval_s: float, on_frame: Callable[[str, Frame], None],
                 open_timeout_s: float = 5, read_timeout_s: float = 5, stall_timeout_s: float = 10,
                 backoff_initial_s: float = 1, backoff_max_s: float = 30):
        self.name, self.url = name, url
        self.sampler = FrameSampler(sample_interval_s)
        self.on_frame = on_frame
        self.timeouts = (open_timeout_s, min(read_timeout_s, stall_timeout_s))
        self.stall_timeout_s = stall_timeout_s
        self.backoff = (backoff_initial_s, backoff_max_s)
        self.health = CameraHealth()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"camera-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        self._thread.join(timeout)
        self.health.state = "stopped"

    def _run(self) -> None:
        delay = self.backoff[0]
        while not self._stop.is_set():
            reader = RtspReader(self.url, *self.timeouts)
            try:
                reader.open()
                log.info("camera %s: connected to %s", self.name, mask_url(self.url))
                delay = self.backoff[0]
                self._read(reader)
            except StreamError as exc:
                self.health.last_error = str(exc)
                if self.health.state == "streaming" and "timed out" in str(exc).lower() or "Immediate exit" in str(exc):
                    self.health.state = "stalled"
                log.warning("camera %s: %s", self.name, exc)
            finally:
                reader.close()
            if self._stop.is_set():
                break
            if self.health.state != "stalled":
                self.health.state = "reconnecting"
            self.health.reconnects += 1
            # Full jitter: many cameras behind one dead switch must not reconnect in lockstep.
            wait = random.uniform(self.backoff[0], delay)
            log.info("camera %s: reconnecting in %.1fs", self.name, wait)
            self._stop.wait(wait)
            delay = min(self.backoff[1], delay * 2)

    def _read(self, reader: RtspReader) -> None:
        last = time.monotonic()
        for frame in reader.frames():
            if self._stop.is_set():
                return
            now = time.monotonic()
            if now - last > self.stall_timeout_s:
                self.health.state = "stalled"
                raise StreamError(f"no frame for {now - last:.1f}s (stalled)")
            last = now
            self.health.state = "streaming"
            self.health.frames_decoded += 1
            self.health.last_frame_at = frame.captured_at
            if self.sampler.should_take(frame.captured_at):
                self.health.frames_sampled += 1
                try:
                    self.on_frame(self.name, frame)
                except Exception:  # a consumer bug must not kill the camera
                    log.exception("camera %s: frame handler failed", self.name)
