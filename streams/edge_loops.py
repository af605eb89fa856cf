"""The edge's slow work, each on a thread of its own so that it never holds up inference:

* the evidence thread blurs, renders and stores each confirmed event (streams/event_builder.py);
* the verifier thread asks the API for resolved orders and tells it whether each camera
  still sees the issue (streams/verifier.py), from frames the pipeline hands it.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from typing import TYPE_CHECKING, Callable

import numpy as np

from streams.camera_analysis import CameraState, IssueTypeOf, ThresholdOf
from streams.edge_privacy import EdgePrivacy
from streams.pending_events import PendingEvents
from streams.uplink import OutgoingEvent
from vision.confirm import ConfirmedIssue
from vision.detections import Detections
from vision.manifest import ModelManifest

if TYPE_CHECKING:  # httpx is loaded only on boxes that verify fixes
    from streams.verifier import FixVerifier

log = logging.getLogger("streetwatch.edge")

MakeEvent = Callable[[CameraState, np.ndarray, ConfirmedIssue, Detections | None, ModelManifest], OutgoingEvent]


class EvidenceThread:
    """Confirmed events wait in `queue` (camera state, frame, issue, detections, manifest) until
    rendered; rendered ones the store refuses (a full disk) wait in `pending`, in order."""

    def __init__(self, make_event: MakeEvent, store: Callable[[OutgoingEvent], None], stop: threading.Event):
        self.queue: queue.Queue = queue.Queue()
        self.pending = PendingEvents(store)
        self.errors = 0  # events that could not be rendered or stored at all
        self._make_event = make_event
        self._stop = stop

    def run(self) -> None:
        """Until `stop` is set and every queued event is rendered."""
        try:
            # Blurring a frame costs ~0.5 s of CPU (Haar cascades): let the capture and inference
            # threads go first, so a burst of events never delays analysis. (Linux: per thread.)
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        except (AttributeError, OSError):
            pass
        # test hook: hold each event this long before rendering (the kill -9 test's window)
        hold_s = float(os.environ.get("STREETWATCH_TEST_EVIDENCE_DELAY_S", "0"))
        while not self._stop.is_set() or not self.queue.empty():
            try:
                state, image, issue, detections, manifest = self.queue.get(timeout=0.5)
            except queue.Empty:
                self.pending.retry()
                continue
            if hold_s:
                self._stop.wait(hold_s)
            try:
                # kept for a retry if the disk is full
                self.pending.store(self._make_event(state, image, issue, detections, manifest))
            except Exception:
                self.errors += 1
                log.exception("camera %s: could not render or store event %s", state.config.name, issue.event_id)
        self.pending.retry()  # once more before the process ends


class VerifierThread:
    """Polls the API for resolved orders and shows the verifier the frames `offer` hands it."""

    def __init__(self, verifier: FixVerifier, privacy: EdgePrivacy, issue_type_of: IssueTypeOf,
                 threshold_of: ThresholdOf, stop: threading.Event):
        self.verifier = verifier
        self._frames: queue.Queue = queue.Queue(maxsize=64)
        self._privacy = privacy
        self._issue_type_of = issue_type_of
        self._threshold_of = threshold_of
        self._stop = stop

    def offer(self, state: CameraState, image: np.ndarray, detections: Detections) -> None:
        """Hand a frame over without waiting: the verifier's HTTP calls must never hold up inference."""
        try:
            self._frames.put_nowait((state, image, detections, time.monotonic()))
        except queue.Full:
            pass  # it is behind; a later frame will do

    def run(self) -> None:
        from vision.evidence import encode_jpeg

        while not self._stop.is_set():
            try:
                self.verifier.maybe_poll()
            except Exception:  # the thread must outlive whatever the API answers
                log.exception("fix verification: polling the API failed")
            try:
                state, image, detections, now = self._frames.get(timeout=1.0)
            except queue.Empty:
                continue
            seen = [(issue, tuple(float(v) for v in box))
                    for box, cls, conf in zip(detections.xyxy, detections.class_id, detections.confidence)
                    if (issue := self._issue_type_of(int(cls))) and conf >= self._threshold_of(int(cls))]
            blur = self._privacy.blurs(state.config)
            # made only when the verifier wants the photo: the blur and its people pass are not free
            jpeg = lambda: encode_jpeg(  # noqa: E731
                self._privacy.blur(image, self._privacy.regions(detections, image)) if blur else image)
            try:
                self.verifier.observe(state.config.name, (image.shape[1], image.shape[0]), seen, jpeg, now)
            except Exception:
                log.exception("camera %s: fix verification failed", state.config.name)
