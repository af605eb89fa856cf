"""The edge box: cameras → sampled frames → batched detector → zones → tracker → confirmer →
privacy blur → evidence → durable outbox → API.

One process runs every camera of the config:

* one capture thread per camera (streams/camera.py) decodes only the frames sampling needs
  (streams/decode_plan.py) and reconnects on its own;
* one inference thread (streams/scheduler.py) batches the newest frame of each camera through
  the model, because on a small CPU box two models side by side only fight over the cores;
* one evidence thread blurs faces and plates and renders the JPEGs of confirmed events
  (slow, rare work that must not hold up inference) and writes them to the outbox;
* one sender thread (streams/uplink.py) empties the outbox into the API, in order;
* one verifier thread (streams/verifier.py) polls the API for resolved orders and reports
  whether each camera still sees the issue, from frames handed to it when it has watches.

`/healthz` and `/metrics` are served on `http.host:http.port` (streams/metrics.py).
"""

from __future__ import annotations

import logging
import os
import queue
import sqlite3
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import numpy as np

from api.schemas import CameraRef, EventIn, ModelRef
from streams.config import CameraConfig, ConfigError, EdgeConfig
from streams.health import camera_report, edge_report
from streams.pending_events import STORE_ERRORS, PendingEvents
from streams.sampling import camera_interval, camera_mode, camera_transport, is_sparse
from streams.uplink import EventUploader, OutgoingEvent
from vision.confirm import ConfirmedIssue, ConfirmRule, EventConfirmer
from vision.detections import Detections
from vision.detector import Detector, load_detector
from vision.evidence import clip_box, render_evidence
from vision.manifest import ModelManifest, load_manifest
from vision.tracker import IssueTracker
from vision.zones import Area, filter_zones

log = logging.getLogger("streetwatch.edge")


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


@dataclass
class CameraState:
    config: CameraConfig
    tracker: IssueTracker | None  # None: sparse samples, confirmed by region (vision/sparse_confirm.py)
    confirmer: EventConfirmer  # or a SparseConfirmer, which has the same face
    zones: list[Area]
    masks: list[Area]
    frames_analysed: int = 0
    events: int = 0
    analysed_at: deque = field(default_factory=lambda: deque(maxlen=120))  # monotonic, for intervals
    latencies: deque = field(default_factory=lambda: deque(maxlen=120))  # capture → detections, seconds
    frame_size: tuple[int, int] | None = None  # (w, h) of the last analysed frame


class EdgePipeline:
    def __init__(self, config: EdgeConfig, detector: Detector | None = None, uploader: EventUploader | None = None):
        self.config = config
        self.manifest: ModelManifest = detector.manifest if detector else load_manifest(config.model)
        self.detector = detector or load_detector(self.manifest, config.detector, config.detector_threads)
        self._given_detector = detector is not None  # (tests, tools): it runs alone, not copied
        self.uploader = uploader  # in-memory sending (tests, tools); None: the durable outbox
        self.outbox = None
        self.sender = None
        self.cameras = {c.name: self._camera_state(c) for c in config.cameras if c.enabled}
        self._tz = ZoneInfo(config.timezone) if config.timezone else None
        self._privacy = None
        self._privacy_lock = threading.Lock()
        self._evidence: queue.Queue = queue.Queue()
        self._recovered: dict[str, list[ConfirmedIssue]] = {}  # camera → confirmed before a crash
        self._stop = threading.Event()
        self._workers: dict = {}
        self._threads: list[threading.Thread] = []
        self.scheduler = None
        self.metrics = None
        self.http = None
        self.evidence_errors = 0
        self.pending = PendingEvents(self._store)  # rendered events the outbox refused, to retry
        self.verifier = None
        self.fleet = None  # heartbeat and central zones, with api.box_id (streams/fleet_link.py)
        self._verify: queue.Queue = queue.Queue(maxsize=64)
        self.snapshots = None  # the snapshot cameras' scheduler, made with the first one (streams/snapshot_setup.py)

    def _camera_state(self, cam: CameraConfig) -> CameraState:
        interval = camera_interval(self.config, cam)
        rules = {t: ConfirmRule(s.confirm_seconds, s.min_hits, s.clear_seconds, s.score_window,
                                s.sample_window or max(5, s.min_hits))
                 for t, s in self.config.issues.items()}
        zones = [Area.make(z.polygon, [t.value for t in z.issue_types], z.anchor, z.hours) for z in cam.zones.values()]
        masks = [Area.make(m.polygon, [t.value for t in m.issue_types], m.anchor, m.hours) for m in cam.masks]
        if is_sparse(self.config, cam):  # snapshots, or 10 s and more between frames: regions, no tracks
            from vision.sparse_confirm import SparseConfirmer

            return CameraState(cam, None, SparseConfirmer(self._issue_type_of, self._threshold_of, rules),
                               zones, masks)
        confirmer = EventConfirmer(self._issue_type_of, self._threshold_of, rules)
        # Tracks must be able to start at the lowest class threshold, or a class with a low
        # threshold would never get a track to confirm.
        lowest = min(self._threshold_of(c) for c in self.manifest.classes)
        tracker = IssueTracker(interval, lost_seconds=30.0, high_thresh=min(0.25, lowest), low_thresh=min(0.1, lowest / 2))
        return CameraState(cam, tracker, confirmer, zones, masks)

    def _issue_type_of(self, class_id: int):
        # The current manifest's, not one bound at start: the model may be switched (switch_model).
        return self.manifest.issue_type_of(class_id)

    def switch_model(self, manifest: ModelManifest, detectors: list[Detector]) -> None:
        """Run another model (streams/model_rollout.py) from the next batch on: the scheduler
        waits for the running batches, then the manifest and every worker's detector change
        together. Tracks and confirmation timers go on."""
        def between() -> None:
            self.manifest, self.detector = manifest, detectors[0]

        self.scheduler.swap(detectors, between)
        log.info("now running model %s v%s", manifest.name, manifest.version)

    def _threshold_of(self, class_id: int) -> float:
        """The config's threshold for the class's issue type, else the model's own for the class."""
        issue = self.manifest.issue_type_of(class_id)
        override = self.config.issue(issue).threshold if issue else None
        return override if override is not None else self.manifest.threshold_of(class_id)

    # -- frame analysis (also called directly by tests and clip evaluation) ------------------
    def _minute_of_day(self, captured_at: float) -> int:
        local = datetime.fromtimestamp(captured_at, tz=self._tz) if self._tz else datetime.fromtimestamp(captured_at)
        return local.hour * 60 + local.minute

    def analyse(self, camera: str, detections: Detections, captured_at: float,
                frame_size: tuple[int, int] | None = None) -> list[ConfirmedIssue]:
        """Zones and masks, tracking, hysteresis and confirmation for one analysed frame
        (`frame_size`, (w, h), lets a change of the camera's resolution be followed)."""
        state = self.cameras[camera]
        if frame_size is not None:
            if state.frame_size is not None and frame_size != state.frame_size:
                log.info("camera %s: frames are now %dx%d (were %dx%d)", camera, *frame_size, *state.frame_size)
                state.confirmer.rescale(frame_size[0] / state.frame_size[0], frame_size[1] / state.frame_size[1])
            state.frame_size = frame_size
        if state.zones or state.masks:
            kinds = [t.value if (t := self.manifest.issue_type_of(c)) else None for c in detections.class_id]
            detections = filter_zones(detections, kinds, state.zones, state.masks, self._minute_of_day(captured_at))
        tracked = state.tracker.update(detections) if state.tracker is not None else detections
        state.frames_analysed += 1
        issues = state.confirmer.update(tracked, captured_at)
        state.events += len(issues)
        return issues

    def process_frame(self, camera: str, image: np.ndarray, captured_at: float) -> list[OutgoingEvent]:
        """Detect, analyse and render the events of one frame, synchronously."""
        detections = self.detector.detect(image)
        issues = self.analyse(camera, detections, captured_at, (image.shape[1], image.shape[0]))
        return [self._make_event(self.cameras[camera], image, issue, detections) for issue in issues]

    def _privacy_filter(self):
        with self._privacy_lock:
            if self._privacy is None:
                from vision.privacy import PrivacyFilter

                self._privacy = PrivacyFilter()
            return self._privacy

    def _privacy_regions(self, detections: Detections | None) -> list[tuple[int, int, int, int]]:
        """Heads of the people and plates of the vehicles the model saw in the frame (a model
        with context classes), at any score a person could hide behind."""
        if detections is None or not len(detections):
            return []
        from vision.privacy import regions_from_detections

        names = [self.manifest.classes[int(c)].name if int(c) in self.manifest.classes else "" for c in detections.class_id]
        keep = detections.confidence >= 0.1
        return regions_from_detections(detections.xyxy[keep], [n for n, k in zip(names, keep) if k])

    def _make_event(self, state: CameraState, image: np.ndarray, issue: ConfirmedIssue,
                    detections: Detections | None = None, manifest: ModelManifest | None = None) -> OutgoingEvent:
        manifest = manifest or self.manifest  # the model that saw it, if another runs by now
        cam = state.config
        blur = cam.privacy_blur if cam.privacy_blur is not None else self.config.privacy_blur
        if blur:
            # Everything rendered below comes from the blurred copy; the original stays here.
            image, _ = self._privacy_filter().blur(image, self._privacy_regions(detections))
        h, w = image.shape[:2]
        class_name = manifest.classes[issue.class_id].name
        label = f"{issue.issue_type.value} {issue.confidence:.2f}"
        box = clip_box(issue.box, w, h)
        if box is None:  # confirmed on a frame of another size (an event recovered after a restart)
            log.warning("camera %s: event %s's box %s lies outside this %dx%d frame; the whole frame stands for it",
                        cam.name, issue.event_id, tuple(round(v) for v in issue.box), w, h)
            box = (0.0, 0.0, float(w), float(h))
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
            model=ModelRef(name=manifest.name, version=manifest.version),
        )
        log.info("camera %s: confirmed %s (track %d, %.2f) after %.0fs", cam.name, issue.issue_type.value,
                 issue.tracker_id, issue.confidence, issue.confirmed_at - issue.first_seen)
        return OutgoingEvent(event, render_evidence(image, box, label, issue.issue_type.value))

    # -- live: the scheduler's result handler and the evidence thread -------------------------
    def _on_result(self, camera: str, frame, detections: Detections, reused: bool) -> None:
        state = self.cameras.get(camera)
        if state is None:
            return  # removed while its last frame was waiting for inference
        issues = self.analyse(camera, detections, frame.captured_at, (frame.image.shape[1], frame.image.shape[0]))
        state.analysed_at.append(time.monotonic())
        latency = max(0.0, time.time() - frame.captured_at)
        state.latencies.append(latency)
        if self.metrics is not None:
            self.metrics.latency_seconds.observe(latency)
        for issue in issues:
            if self.outbox is not None:  # on disk before the slow blur and render
                try:
                    self.outbox.journal(issue.event_id, camera, issue.to_json())
                except STORE_ERRORS as exc:  # a full disk: the event still goes on
                    log.error("camera %s: cannot journal event %s (%s); a crash before it is stored would lose it",
                              camera, issue.event_id, exc)
            self._evidence.put((state, frame.image, issue, detections, self.manifest))
        if self.fleet is not None:
            self.fleet.saw(camera, frame.image, detections)  # its snapshot, when one is due (cheap)
        for issue in self._recovered.pop(camera, []):
            log.info("camera %s: rendering event %s, confirmed before a restart, from a frame taken now",
                     camera, issue.event_id)
            self._evidence.put((state, frame.image, issue, detections, self.manifest))
        if self.verifier is not None and self.verifier.watches.get(camera):
            try:  # the verifier's HTTP calls must never hold up inference: hand it over
                self._verify.put_nowait((state, frame.image, detections, time.monotonic()))
            except queue.Full:
                pass  # it is behind; a later frame will do

    def _verify_loop(self) -> None:
        from vision.evidence import encode_jpeg

        while not self._stop.is_set():
            try:
                self.verifier.maybe_poll()
            except Exception:  # the thread must outlive whatever the API answers
                log.exception("fix verification: polling the API failed")
            try:
                state, image, detections, now = self._verify.get(timeout=1.0)
            except queue.Empty:
                continue
            seen = [(issue, tuple(float(v) for v in box))
                    for box, cls, conf in zip(detections.xyxy, detections.class_id, detections.confidence)
                    if (issue := self.manifest.issue_type_of(int(cls))) and conf >= self._threshold_of(int(cls))]
            blur = state.config.privacy_blur if state.config.privacy_blur is not None else self.config.privacy_blur
            regions = self._privacy_regions(detections)
            jpeg = lambda: encode_jpeg(self._privacy_filter().blur(image, regions)[0] if blur else image)  # noqa: E731
            try:
                self.verifier.observe(state.config.name, (image.shape[1], image.shape[0]), seen, jpeg, now)
            except Exception:
                log.exception("camera %s: fix verification failed", state.config.name)

    def _evidence_loop(self) -> None:
        try:
            # Blurring a frame costs ~0.5 s of CPU (Haar cascades): let the capture and inference
            # threads go first, so a burst of events never delays analysis. (Linux: per thread.)
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        except (AttributeError, OSError):
            pass
        # test hook: hold each event this long before rendering (the kill -9 test's window)
        hold_s = float(os.environ.get("STREETWATCH_TEST_EVIDENCE_DELAY_S", "0"))
        while not self._stop.is_set() or not self._evidence.empty():
            try:
                state, image, issue, detections, manifest = self._evidence.get(timeout=0.5)
            except queue.Empty:
                self.pending.retry()
                continue
            if hold_s:
                self._stop.wait(hold_s)
            try:
                # kept for a retry if the disk is full
                self.pending.store(self._make_event(state, image, issue, detections, manifest))
            except Exception:
                self.evidence_errors += 1
                log.exception("camera %s: could not render or store event %s", state.config.name, issue.event_id)
        self.pending.retry()  # once more before the process ends

    def _store(self, item: OutgoingEvent) -> None:
        if self.uploader is not None:
            self.uploader.submit(item)
        else:
            # Durable from here on: the sender posts it, a crash does not lose it.
            self.outbox.put(item.event.event_id, item.event.model_dump_json(), item.images)
            self.sender.wake()

    # -- running on live cameras ------------------------------------------------------
    def start(self) -> None:
        from streams.metrics import EdgeHttpServer, EdgeMetrics
        from streams.scheduler import InferenceScheduler

        cfg = self.config
        if cfg.api.box_id:
            from streams.fleet_link import FleetLink

            self.fleet = FleetLink(self)
        import cv2

        # OpenCV's own worker threads would run the (niced) evidence thread's face search on
        # every core at normal priority; the box has cameras to read.
        cv2.setNumThreads(1)
        if self.uploader is None:
            from streams.outbox import Outbox
            from streams.uplink import OutboxSender

            try:
                self.outbox = Outbox(cfg.outbox.path, int(cfg.outbox.max_mb * 2**20))
            except (OSError, sqlite3.DatabaseError) as exc:
                raise ConfigError(f"outbox.path {cfg.outbox.path}: cannot keep the outbox there: {exc}") from exc
            self.sender = OutboxSender(self.outbox, cfg.api.url, cfg.api.key, cfg.api.timeout_s,
                                       batch_max_events=cfg.api.batch_max_events)
            self.sender.start()
            if len(self.outbox):
                log.info("outbox: %d event(s) from before the restart will be sent first", len(self.outbox))
            for event_id, camera, issue_json in self.outbox.unrendered():
                if camera in self.cameras:
                    self._recovered.setdefault(camera, []).append(ConfirmedIssue.from_json(issue_json))
                else:
                    log.warning("outbox: event %s of camera %s (no longer configured) has no frame to show; "
                                "dropped", event_id, camera)
                    self.outbox.forget_unrendered(event_id)
        else:
            self.uploader.start()
        self.metrics = EdgeMetrics(self.health)

        def gate_of(camera: str) -> float | None:
            state = self.cameras.get(camera)
            own = state.config.change_threshold if state is not None else None
            return own if own is not None else cfg.change_threshold

        # The first worker uses the pipeline's detector; each other one loads its own copy.
        copies = 0 if self._given_detector else cfg.inference_workers - 1
        detectors = [self.detector] + [load_detector(self.manifest, cfg.detector, cfg.detector_threads)
                                       for _ in range(copies)]
        self.scheduler = InferenceScheduler(detectors, self._on_result, cfg.max_batch, cfg.batch_wait_ms / 1000,
                                            gate_of, on_batch=self.metrics.observe_batch)
        self.scheduler.start()
        evidence = threading.Thread(target=self._evidence_loop, name="evidence", daemon=True)
        evidence.start()
        self._threads.append(evidence)
        if cfg.verify_fixes and self.uploader is None:
            import httpx

            from streams.verifier import FixVerifier

            headers = {"Authorization": f"Bearer {cfg.api.key}"} if cfg.api.key else {}
            client = httpx.Client(base_url=cfg.api.url, headers=headers, timeout=cfg.api.timeout_s)
            self.verifier = FixVerifier(client, list(self.cameras), poll_interval_s=cfg.verify_poll_s)
            threading.Thread(target=self._verify_loop, name="verifier", daemon=True).start()
        for name, state in self.cameras.items():
            self.add_camera_worker(name)
        if cfg.http is not None:
            try:
                self.http = EdgeHttpServer(cfg.http.host, cfg.http.port, self.health, self.metrics)
                log.info("edge health and metrics on %s/healthz and /metrics", self.http.url)
            except OSError as exc:  # the cameras matter more than the dashboard
                log.error("cannot serve /healthz and /metrics on %s:%d: %s", cfg.http.host, cfg.http.port, exc.strerror)
        log.info("edge running: %d camera(s), model %s v%s (%s × %d), API %s", len(self._workers), self.manifest.name,
                 self.manifest.version, cfg.detector, len(self.scheduler.detectors), cfg.api.url)

    def add_camera_worker(self, name: str) -> None:
        from streams.camera import CameraWorker  # PyAV is only needed for live cameras

        cfg, cam = self.config, self.cameras[name].config
        if camera_mode(cfg, cam) != "stream":
            if self.snapshots is None:
                from streams.snapshot_setup import SnapshotCameras

                self.snapshots = SnapshotCameras(cfg, self.scheduler.submit, self.scheduler.depth,
                                                 len(self.scheduler.detectors))
            self._workers[name] = self.snapshots.add(cam)
            return
        worker = CameraWorker(
            name, cam.url, camera_interval(cfg, cam), self.scheduler.submit,
            open_timeout_s=cfg.open_timeout_s, read_timeout_s=cfg.read_timeout_s, stall_timeout_s=cfg.stall_timeout_s,
            backoff_initial_s=cfg.backoff_initial_s, backoff_max_s=cfg.backoff_max_s,
            decode_mode=cam.decode or cfg.decode, rtsp_client=cam.rtsp_client or cfg.rtsp_client,
            transport=camera_transport(cfg, cam),
        )
        worker.start()
        self._workers[name] = worker

    def add_camera(self, cam: CameraConfig) -> None:
        """Start one more camera on a running pipeline (the benchmark's ramp)."""
        if cam.name in self.cameras:
            raise ValueError(f"camera {cam.name} is already running")
        self.cameras[cam.name] = self._camera_state(cam)
        self.add_camera_worker(cam.name)
        if self.verifier is not None:
            self.verifier.cameras.append(cam.name)

    def remove_camera(self, name: str) -> None:
        """Stop one camera of a running pipeline and forget its state."""
        worker = self._workers.pop(name, None)
        if worker is not None:
            worker.stop(timeout=5)
        self.cameras.pop(name, None)
        if self.verifier is not None and name in self.verifier.cameras:
            self.verifier.cameras.remove(name)

    def evidence_backlog(self) -> int:
        """Confirmed events still waiting to be blurred, rendered and stored."""
        return self._evidence.qsize()

    def health(self) -> dict:
        sched = self.scheduler
        cameras = {}
        for name, state in list(self.cameras.items()):
            worker = self._workers.get(name)
            cameras[name] = camera_report(
                worker.health if worker is not None else None, state.frames_analysed, state.events,
                state.analysed_at, state.latencies, sched.reused[name] if sched else 0,
                sched.replaced[name] if sched else 0)
            if hasattr(worker, "report"):  # a snapshot camera: grabs, failures by reason
                cameras[name].update(worker.report())
        sender = self.sender or self.uploader
        outbox = self.outbox.stats() if self.outbox is not None else {
            "events": self.uploader.pending() if self.uploader else 0, "bytes": 0, "dropped_images": 0, "dropped_bytes": 0}
        outbox["unstored"] = len(self.pending)  # rendered events waiting in memory for the disk
        report = edge_report(cameras, sched.depth() if sched else 0, outbox, sender.sent if sender else 0,
                             sender.rejected if sender else 0, sum(sched.replaced.values()) if sched else 0)
        if self.snapshots is not None:
            report["snapshots"] = self.snapshots.stats()
        return report

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers.values():
            worker.stop(timeout=5)
        if self.snapshots is not None:
            self.snapshots.stop()
        if self.scheduler is not None:
            self.scheduler.stop()
        for thread in self._threads:
            thread.join(10)  # the evidence thread stores what was confirmed before it ends
        if self.http is not None:
            self.http.stop()
        if self.verifier is not None:
            self.verifier.client.close()
        if self.fleet is not None:
            self.fleet.stop()
        if self.sender is not None:
            self.sender.stop()
            self.outbox.close()
        elif self.uploader is not None:
            self.uploader.stop()

    def run_forever(self) -> None:
        self.start()
        try:
            while True:
                time.sleep(1)
        finally:
            self.stop()
