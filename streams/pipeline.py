"""The edge pipeline: cameras → sampled frames → detector → tracker → confirmer → evidence → API.

One process runs every camera of the config. Each camera has its own reader thread and
its own tracker and confirmer; a single inference thread runs the model, because on a
small CPU box two models side by side only fight over the same cores.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from api.schemas import CameraRef, EventIn, ModelRef
from streams.config import CameraConfig, EdgeConfig
from streams.uplink import EventUploader, OutgoingEvent
from vision.confirm import ConfirmRule, EventConfirmer
from vision.detector import Detector, load_detector
from vision.evidence import render_evidence
from vision.manifest import ModelManifest, load_manifest
from vision.tracker import IssueTracker
from vision.zones import filter_zones

log = logging.getLogger("streetwatch.edge")


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


@dataclass
class CameraState:
    config: CameraConfig
    tracker: IssueTracker
    confirmer: EventConfirmer
    frames_analysed: int = 0
    events: int = 0


class EdgePipeline:
    def __init__(self, config: EdgeConfig, detector: Detector | None = None, uploader: EventUploader | None = None):
        self.config = config
        self.manifest: ModelManifest = detector.manifest if detector else load_manifest(config.model)
        self.detector = detector or load_detector(self.manifest, config.detector)
        self.uploader = uploader or EventUploader(config.api.url, config.api.key, config.api.timeout_s)
        self.cameras = {c.name: self._camera_state(c) for c in config.cameras if c.enabled}
        self._frames: queue.Queue = queue.Queue(maxsize=max(4, 2 * len(self.cameras)))
        self._stop = threading.Event()
        self._workers: list = []
        self._infer_thread = threading.Thread(target=self._infer_loop, name="inference", daemon=True)
        self.dropped_frames = 0

    def _camera_state(self, cam: CameraConfig) -> CameraState:
        interval = cam.sample_interval_s or self.config.sample_interval_s
        rules = {t: ConfirmRule(s.confirm_seconds, s.min_hits, s.clear_seconds) for t, s in self.config.issues.items()}

        def threshold_of(class_id: int) -> float:
            issue = self.manifest.issue_type_of(class_id)
            override = self.config.issue(issue).threshold if issue else None
            return override if override is not None else self.manifest.threshold_of(class_id)

        confirmer = EventConfirmer(self.manifest.issue_type_of, threshold_of, rules)
        # Tracks must be able to start at the lowest class threshold, or a class with a low
        # threshold would never get a track to confirm.
        lowest = min(threshold_of(c) for c in self.manifest.classes)
        tracker = IssueTracker(interval, lost_seconds=30.0, high_thresh=min(0.25, lowest), low_thresh=min(0.1, lowest / 2))
        return CameraState(cam, tracker, confirmer)

    # -- frame processing (also called directly by tests) -------------------------------
    def process_frame(self, camera: str, image: np.ndarray, captured_at: float) -> list[OutgoingEvent]:
        state = self.cameras[camera]
        detections = self.detector.detect(image)
        issue_types = [self.manifest.issue_type_of(c) for c in detections.class_id]
        zones = [(z.polygon, [t.value for t in z.issue_types]) for z in state.config.zones.values()]
        detections = filter_zones(detections, [t.value if t else None for t in issue_types], zones, state.config.masks)
        tracked = state.tracker.update(detections)
        state.frames_analysed += 1
        out = []
        for issue in state.confirmer.update(tracked, captured_at):
            out.append(self._make_event(state, image, issue))
            state.events += 1
        return out

    def _make_event(self, state: CameraState, image: np.ndarray, issue) -> OutgoingEvent:
        cam = state.config
        h, w = image.shape[:2]
        class_name = self.manifest.classes[issue.class_id].name
        label = f"{issue.issue_type.value} {issue.confidence:.2f}"
        x1, y1, x2, y2 = issue.box
        box = (max(0.0, x1), max(0.0, y1), min(float(w), x2), min(float(h), y2))
        event = EventIn(
            event_id=issue.event_id,
            camera=CameraRef(name=cam.name, lat=cam.lat, lon=cam.lon, grid_id=cam.grid_id),
            issue_type=issue.issue_type,
            class_name=class_name,
            confidence=min(1.0, issue.confidence),
            bbox=box,
            frame_width=w,
            frame_height=h,
            first_seen=_utc(issue.first_seen),
            confirmed_at=_utc(issue.confirmed_at),
            track_id=issue.tracker_id,
            model=ModelRef(name=self.manifest.name, version=self.manifest.version),
        )
        log.info("camera %s: confirmed %s (track %d, %.2f) after %.0fs", cam.name, issue.issue_type.value,
                 issue.tracker_id, issue.confidence, issue.confirmed_at - issue.first_seen)
        return OutgoingEvent(event, render_evidence(image, box, label, issue.issue_type.value))

    # -- running on live cameras ------------------------------------------------------
    def start(self) -> None:
        from streams.camera import CameraWorker  # PyAV is only needed for live cameras

        self.uploader.start()
        self._infer_thread.start()
        for name, state in self.cameras.items():
            cam = state.config
            worker = CameraWorker(
                name, cam.url, cam.sample_interval_s or self.config.sample_interval_s, self._on_frame,
                open_timeout_s=self.config.open_timeout_s, read_timeout_s=self.config.read_timeout_s,
                stall_timeout_s=self.config.stall_timeout_s,
            )
            worker.start()
            self._workers.append(worker)
        log.info("edge running: %d camera(s), model %s v%s, API %s", len(self._workers), self.manifest.name,
                 self.manifest.version, self.config.api.url)

    def _on_frame(self, camera: str, frame) -> None:
        try:
            self._frames.put_nowait((camera, frame))
        except queue.Full:
            # Inference is behind: drop the oldest frame, the newest says more about now.
            try:
                self._frames.get_nowait()
                self.dropped_frames += 1
            except queue.Empty:
                pass
            self._frames.put_nowait((camera, frame))

    def _infer_loop(self) -> None:
        while not self._stop.is_set():
            try:
                camera, frame = self._frames.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                for item in self.process_frame(camera, frame.image, frame.captured_at):
                    self.uploader.submit(item)
            except Exception:  # one bad frame must not stop every camera
                log.exception("camera %s: frame processing failed", camera)

    def health(self) -> dict:
        return {
            "cameras": {w.name: {"state": w.health.state, "frames_analysed": self.cameras[w.name].frames_analysed,
                                 "events": self.cameras[w.name].events} for w in self._workers},
            "pending_events": self.uploader.pending(),
            "events_sent": self.uploader.sent,
            "dropped_frames": self.dropped_frames,
        }

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.stop(timeout=5)
        self._infer_thread.join(5)
        self.uploader.stop()

    def run_forever(self) -> None:
        self.start()
        try:
            while True:
                time.sleep(1)
        finally:
            self.stop()
