"""One inference queue for every camera: batches the latest frame of each camera.

Each camera has one slot holding its newest frame; a newer frame replaces an older one
still waiting (counted in `replaced`), so a slow model makes cameras skip frames instead of
queueing stale ones, and memory stays at one frame per camera. Cameras are served in the
order their frames arrived, so none can starve another.

Change gating (optional, per camera): a frame whose small grey thumbnail differs from that
of the camera's last inferred frame by less than the threshold (mean absolute difference,
0-255) reuses that frame's detections instead of running the model. The result is still
handed on with the new frame's time, so confirmation timers advance. After `max_reuse`
reuses in a row the model runs anyway, so slow drift cannot hide a change for ever.

Workers: one by default. Given several detectors (as Frigate users list several detectors),
one thread per detector takes batches from the same slots, so a batch can run while another
is being tracked or while its thread waits for a core. A camera is never in two batches at
once: its frames reach the tracker in order, and its state needs no lock.

Another model (streams/model_rollout.py) is switched to between two batches: swap() holds
back new batches, waits for the running ones to finish, replaces every worker's detector
and lets them go on. Frames arriving meanwhile wait in their slots as they would behind a
slow batch; no batch runs half on one model and half on the other.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

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
    size: tuple[int, int]  # (h, w) of the frame the detections are in: thumbnails all share one size
    reused: int = 0


ResultHandler = Callable[[str, FrameLike, Detections, bool], None]


def thumbnail(image: np.ndarray) -> np.ndarray:
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    return cv2.resize(gray, THUMB, interpolation=cv2.INTER_AREA).astype(np.int16)


class InferenceScheduler:
    def __init__(self, detector: Detector | Sequence[Detector], on_result: ResultHandler, max_batch: int = 8,
                 batch_wait_s: float = 0.01, change_threshold: Callable[[str], float | None] = lambda camera: None,
                 max_reuse: int = 10, on_batch: Callable[[int, float], None] | None = None):
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.detectors = list(detector) if isinstance(detector, (list, tuple)) else [detector]
        if not self.detectors:
            raise ValueError("at least one detector is needed")
        self.detector, self.on_result = self.detectors[0], on_result
        self.max_batch, self.batch_wait_s, self.max_reuse = max_batch, batch_wait_s, max_reuse
        self.change_threshold = change_threshold
        self.on_batch = on_batch  # (batch size, seconds) after each model call, for metrics
        self._slots: dict[str, Job] = {}
        self._order: deque[str] = deque()
        self._in_flight: set[str] = set()  # cameras whose frame a worker is running now
        self._holding = False  # a model swap waits for the running batches: hand out no new one
        self.swaps = 0
        self._cond = threading.Condition()
        self._gates: dict[str, _Gate] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
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
        for i in range(len(self.detectors)):
            name = "inference" if len(self.detectors) == 1 else f"inference-{i}"
            thread = threading.Thread(target=self._loop, args=(i,), name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 5) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout)

    def swap(self, detectors: Sequence[Detector], between: Callable[[], None] | None = None,
             timeout_s: float = 60.0) -> None:
        """Run `detectors` (one per worker) from the next batch on; `between` runs while no
        batch does (the pipeline changes its manifest there). TimeoutError, and nothing
        changed, if the running batches do not finish within timeout_s."""
        detectors = list(detectors)
        if len(detectors) != len(self.detectors):
            raise ValueError(f"{len(self.detectors)} detector(s) needed, one per worker; got {len(detectors)}")
        with self._cond:
            self._holding = True
            try:
                if not self._cond.wait_for(lambda: not self._in_flight, timeout_s):
                    raise TimeoutError(f"a batch was still running after {timeout_s:g} s")
                if between is not None:
                    between()
                self.detectors[:] = detectors
                self.detector = detectors[0]
                self.swaps += 1
            finally:
                self._holding = False
                self._cond.notify_all()

    def _ready(self) -> int:
        """Cameras with a frame waiting that no worker is running (under the condition's lock)."""
        if self._holding:
            return 0
        if not self._in_flight:
            return len(self._order)
        return sum(1 for camera in self._order if camera not in self._in_flight)

    def _take(self, timeout: float = 0.5) -> list[Job]:
        with self._cond:
            if not self._cond.wait_for(lambda: self._ready() or self._stop.is_set(), timeout):
                return []
            if self._ready() < self.max_batch and self.batch_wait_s > 0 and not self._stop.is_set():
                # Frames of cameras sampled at the same rate arrive close together: a short
                # wait fills the batch, which costs less per frame than running them one by one.
                self._cond.wait_for(lambda: self._ready() >= self.max_batch or self._stop.is_set(), self.batch_wait_s)
                if self._holding:
                    return []  # a model swap began meanwhile: this batch goes to the new model
            jobs: list[Job] = []
            busy: list[str] = []  # in another worker's batch: they keep their place in line
            while self._order and len(jobs) < self.max_batch:
                camera = self._order.popleft()
                if camera in self._in_flight:
                    busy.append(camera)
                    continue
                jobs.append(self._slots.pop(camera))
                self._in_flight.add(camera)
            self._order.extendleft(reversed(busy))
            return jobs

    def _loop(self, index: int) -> None:
        while not self._stop.is_set():
            jobs = self._take()
            if jobs:
                # Read after taking: while these jobs are in flight, no swap can happen.
                detector = self.detectors[index]
                try:
                    self.run(jobs, detector)
                except Exception:  # one bad batch must not stop every camera
                    with self._cond:
                        self.errors += 1
                    log.exception("inference failed for %s", ", ".join(j.camera for j in jobs))

    def run(self, jobs: list[Job], detector: Detector | None = None) -> None:
        """Detect on a batch (gated frames skip the model) and hand every result on; then
        its cameras may be taken again."""
        try:
            self._run(jobs, detector or self.detector)
        finally:
            with self._cond:
                self._in_flight.difference_update(job.camera for job in jobs)
                self._cond.notify_all()

    def _detect(self, detector: Detector, frames: list[tuple[str, np.ndarray]]) -> list[Detections | None]:
        """The batch in one call; if that fails, each frame alone, so one camera's odd frame
        costs that frame only, not every camera in the batch."""
        try:
            return detector.detect_batch([image for _, image in frames])
        except Exception:
            if len(frames) == 1:
                raise
        found: list[Detections | None] = []
        for camera, image in frames:
            try:
                found.append(detector.detect_batch([image])[0])
            except Exception:
                with self._cond:
                    self.errors += 1
                log.exception("camera %s: inference failed on its %s frame", camera, "x".join(map(str, image.shape)))
                found.append(None)
        return found

    def _run(self, jobs: list[Job], detector: Detector) -> None:
        results: dict[int, tuple[Detections, bool]] = {}
        infer: list[tuple[int, np.ndarray, np.ndarray | None]] = []
        for i, job in enumerate(jobs):
            image = job.frame.image
            threshold = self.change_threshold(job.camera)
            thumb = thumbnail(image) if threshold is not None else None
            gate = self._gates.get(job.camera)
            if (thumb is not None and gate is not None and gate.reused < self.max_reuse
                    and gate.size == image.shape[:2] and float(np.abs(thumb - gate.thumb).mean()) < threshold):
                gate.reused += 1
                self.reused[job.camera] += 1
                results[i] = (gate.detections, True)
            else:
                infer.append((i, image, thumb))
        if infer:
            started = time.perf_counter()
            found = self._detect(detector, [(jobs[i].camera, image) for i, image, _ in infer])
            if self.on_batch is not None:
                self.on_batch(len(infer), time.perf_counter() - started)
            for (i, image, thumb), detections in zip(infer, found):
                if detections is None:
                    continue  # that frame could not be analysed (logged); the others go on
                results[i] = (detections, False)
                if thumb is not None:
                    self._gates[jobs[i].camera] = _Gate(thumb, detections, image.shape[:2])
        for i, job in enumerate(jobs):
            if i not in results:
                continue
            detections, reused = results[i]
            try:
                self.on_result(job.camera, job.frame, detections, reused)
            except Exception:
                with self._cond:
                    self.errors += 1
                log.exception("camera %s: frame processing failed", job.camera)
