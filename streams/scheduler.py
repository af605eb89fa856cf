"""One inference worker for every camera: batches the latest frame of each camera.

Each camera has one slot holding its newest frame; a newer frame replaces an older one
still waiting (counted in `replaced`), so a slow model makes cameras skip frames instead of
queueing stale ones, and memory stays at one frame per camera. Cameras are served in the
order their frames arrived, so none can starve another.

Change gating (optional, per camera): a frame whose small grey thumbnail differs from that
of the camera's last inferred frame by less than the threshold (mean absolute difference,
0-255) reuses that frame's detections instead of running the model. The result is still
handed on with the new frame's time, so confirmation timers advance. After `max_reuse`
reuses in a row the model runs anyway, so slow drift cannot hide a change for ever.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Callable, Protocol

import cv2
import numpy as np

from vision.detections import Detections
from vision.detector import Detector

log = logging.getLogger("streetwatch.edge")
THUMB = (64, 36)


class FrameLike(Protocol):
    captured_at: float

    @property
    def image(self) -> np.ndarray: ...


@dataclass
class Job:
    camera: str
    frame: FrameLike
    queued_at: float  # monotonic


@dataclass
class _Gate:
    thumb: np.ndarray
    detections: Detections
    reused: int = 0


ResultHandler = Callable[[str, FrameLike, Detections, bool], None]


def thumbnail(image: np.ndarray) -> np.ndarray:
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    return cv2.resize(gray, THUMB, interpolation=cv2.INTER_AREA).astype(np.int16)


class InferenceScheduler:
    def __init__(self, detector: Detector, on_result: ResultHandler, max_batch: int = 8, batch_wait_s: float = 0.01,
                 change_threshold: Callable[[str], float | None] = lambda camera: None, max_reuse: int = 10,
                 on_batch: Callable[[int, float], None] | None = None):
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.detector, self.on_result = detector, on_result
        self.max_batch, self.batch_wait_s, self.max_reuse = max_batch, batch_wait_s, max_reuse
        self.change_threshold = change_threshold
        self.on_batch = on_batch  # (batch size, seconds) after each model call, for metrics
        self._slots: dict[str, Job] = {}
        self._order: deque[str] = deque()
        self._cond = threading.Condition()
        self._gates: dict[str, _Gate] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.replaced: Counter[str] = Counter()  # frames dropped for a newer one, per camera
        self.reused: Counter[str] = Counter()  # frames answered by the change gate, per camera
        self.errors = 0

    # -- from camera threads ---------------------------------------------------------------
    def submit(self, camera: str, frame: FrameLike) -> None:
        with self._cond:
            if camera in self._slots:
                self.replaced[camera] += 1
            else:
                self._order.append(camera)
            self._slots[camera] = Job(camera, frame, time.monotonic())
            self._cond.notify()

    def depth(self) -> int:
        with self._cond:
            return len(self._slots)

    # -- the worker ------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="inference", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def _take(self, timeout: float = 0.5) -> list[Job]:
        with self._cond:
            if not self._order and not self._cond.wait_for(lambda: self._order or self._stop.is_set(), timeout):
                return []
            if len(self._order) < self.max_batch and self.batch_wait_s > 0 and not self._stop.is_set():
                # Frames of cameras sampled at the same rate arrive close together: a short
                # wait fills the batch, which costs less per frame than running them one by one.
                self._cond.wait_for(lambda: len(self._order) >= self.max_batch or self._stop.is_set(), self.batch_wait_s)
            jobs = []
            while self._order and len(jobs) < self.max_batch:
                jobs.append(self._slots.pop(self._order.popleft()))
            return jobs

    def _loop(self) -> None:
        while not self._stop.is_set():
            jobs = self._take()
            if jobs:
                try:
                    self.run(jobs)
                except Exception:  # one bad batch must not stop every camera
                    self.errors += 1
                    log.exception("inference failed for %s", ", ".join(j.camera for j in jobs))

    def run(self, jobs: list[Job]) -> None:
        """Detect on a batch (gated frames skip the model) and hand every result on."""
        results: dict[int, tuple[Detections, bool]] = {}
        infer: list[tuple[int, np.ndarray, np.ndarray | None]] = []
        for i, job in enumerate(jobs):
            image = job.frame.image
            threshold = self.change_threshold(job.camera)
            thumb = thumbnail(image) if threshold is not None else None
            gate = self._gates.get(job.camera)
            if (thumb is not None and gate is not None and gate.reused < self.max_reuse
                    and thumb.shape == gate.thumb.shape and float(np.abs(thumb - gate.thumb).mean()) < threshold):
                gate.reused += 1
                self.reused[job.camera] += 1
                results[i] = (gate.detections, True)
            else:
                infer.append((i, image, thumb))
        if infer:
            started = time.perf_counter()
            found = self.detector.detect_batch([image for _, image, _ in infer])
            if self.on_batch is not None:
                self.on_batch(len(infer), time.perf_counter() - started)
            for (i, _, thumb), detections in zip(infer, found):
                results[i] = (detections, False)
                if thumb is not None:
                    self._gates[jobs[i].camera] = _Gate(thumb, detections)
        for i, job in enumerate(jobs):
            detections, reused = results[i]
            try:
                self.on_result(job.camera, job.frame, detections, reused)
            except Exception:
                self.errors += 1
                log.exception("camera %s: frame processing failed", job.camera)
