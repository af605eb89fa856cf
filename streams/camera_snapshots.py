"""Each camera's snapshot for the API: a recent privacy-blurred frame every `api.snapshot_s`.

The review page shows it, and admins draw a camera's zones over it (PUT
/api/v1/cameras/{name}/snapshot, api/camera_snapshots.py). It must never slow detection:
the inference thread only offers its frame (a clock read and a dict lookup; a reference to
the frame when one is due) and a niced thread of its own blurs, encodes and uploads it. At
most MAX_WAITING frames wait at once (a box of 40 cameras starting up must not hold 40 raw
frames); a camera whose frame was not taken is offered again with its next frame.

A frame is blurred exactly as evidence is (streams/edge_privacy.py: the cascades plus the heads
and plates of the people and vehicles the model saw), whatever `privacy_blur` says for events:
every reviewer sees snapshots. If the blur cannot run, nothing is sent. A failed upload is not
retried before the camera's next interval: a snapshot is only ever the latest picture, never a
queue to drain after an outage.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Callable

import httpx
import numpy as np

log = logging.getLogger("streetwatch.edge")

MAX_WAITING = 4  # frames held for the sender at once, all cameras together
JPEG_QUALITY = 85

Blur = Callable[[np.ndarray, Any], np.ndarray]  # (frame, the model's detections) → a blurred copy


class SnapshotUploader:
    def __init__(self, client: httpx.Client, interval_s: float, blur: Blur,
                 clock: Callable[[], float] = time.monotonic):
        self.client, self.interval_s, self.blur, self.clock = client, interval_s, blur, clock
        self._due: dict[str, float] = {}  # camera → when its next frame is wanted (the clock's time)
        self._waiting: dict[str, tuple[np.ndarray, Any]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = self.failed = 0
        self.last_status: dict[str, int | None] = {}  # camera → the API's answer to its last upload
        self._last_complaint: object = 200

    def offer(self, camera: str, image: np.ndarray, detections: Any = None) -> bool:
        """Called with every analysed frame (the inference thread): takes it when the camera's
        snapshot is due and there is room. Never blocks on the network or the blur."""
        now = self.clock()
        if now < self._due.get(camera, float("-inf")):
            return False
        with self._lock:
            if len(self._waiting) >= MAX_WAITING and camera not in self._waiting:
                return False  # the sender is behind: this camera is offered again with its next frame
            self._waiting[camera] = (image, detections)
            # The interval counts from now whatever the upload's fate: a failure waits for the next one.
            self._due[camera] = now + self.interval_s
        self._wake.set()
        return True

    def send_waiting(self) -> int:
        """Blur, encode and upload every frame waiting (the sender thread; tests call it). Returns how many went."""
        done = 0
        while True:
            with self._lock:
                if not self._waiting:
                    return done
                camera = next(iter(self._waiting))
                image, detections = self._waiting.pop(camera)
            if self._send(camera, image, detections):
                done += 1

    def _send(self, camera: str, image: np.ndarray, detections: Any) -> bool:
        from vision.evidence import encode_jpeg

        try:
            jpeg = encode_jpeg(self.blur(image, detections), JPEG_QUALITY)
        except Exception:  # never send what could not be blurred
            self.failed += 1
            log.exception("camera %s: snapshot not sent: blurring or encoding it failed", camera)
            return False
        try:
            resp = self.client.put(f"/api/v1/cameras/{camera}/snapshot", content=jpeg,
                                   headers={"Content-Type": "image/jpeg"})
        except httpx.HTTPError as exc:
            self.failed += 1
            self.last_status[camera] = None
            self._complain(None, f"snapshot: API unreachable ({exc.__class__.__name__}); the next one in "
                                 f"{self.interval_s:g} s")
            return False
        self.last_status[camera] = resp.status_code
        if resp.status_code == 200:
            self.sent += 1
            self._last_complaint = 200
            return True
        self.failed += 1
        self._complain(resp.status_code, f"snapshot of camera {camera}: {resp.status_code} from the API: "
                                         f"{resp.text[:300]}")
        return False

    def _complain(self, status: int | None, message: str) -> None:
        # Once per kind of failure in a row: 40 cameras' snapshots during an outage are one line.
        if status != self._last_complaint:
            log.error(message)
        self._last_complaint = status

    def start(self) -> "SnapshotUploader":
        self._thread = threading.Thread(target=self._run, name="snapshots", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            # The blur costs ~0.5-2 s of CPU a frame: capture and inference go first (Linux: per thread).
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        except (AttributeError, OSError):
            pass
        while not self._stop.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            try:
                self.send_waiting()
            except Exception:  # the thread must outlive anything
                log.exception("snapshots: sending failed")

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)


def pipeline_blur(pipeline: Any) -> Blur:
    """The evidence path's blur (streams/edge_privacy.py): cascades, and the heads and plates of
    the model's people and vehicles."""
    def blur(image: np.ndarray, detections: Any) -> np.ndarray:
        return pipeline.privacy.blur(image, pipeline.privacy.regions(detections, image))
    return blur


def start_snapshots(pipeline: Any, headers: dict[str, str]) -> SnapshotUploader | None:
    """The running pipeline's snapshot sender (its own HTTP client: it must not wait behind a
    model download), or None with `api.snapshot_s: 0`."""
    api = pipeline.config.api
    if not api.snapshot_s:
        return None
    client = httpx.Client(base_url=api.url, headers=headers, timeout=api.timeout_s)
    return SnapshotUploader(client, api.snapshot_s, pipeline_blur(pipeline)).start()
