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

This module wires them together and runs the cameras; what happens to one analysed frame is in
streams/camera_analysis.py, how a confirmed issue becomes an event with evidence in
streams/event_builder.py (the blur in streams/edge_privacy.py), and the evidence and verifier
threads in streams/edge_loops.py.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from zoneinfo import ZoneInfo

import numpy as np

from streams.camera_analysis import CameraState, analyse_frame, new_camera_state
from streams.config import CameraConfig, ConfigError, EdgeConfig
from streams.edge_loops import EvidenceThread, VerifierThread
from streams.edge_privacy import EdgePrivacy
from streams.event_builder import build_event
from streams.health import camera_report, edge_report
from streams.pending_events import STORE_ERRORS
from streams.sampling import camera_interval, camera_mode, camera_transport
from streams.uplink import EventUploader, OutgoingEvent
from vision.confirm import ConfirmedIssue
from vision.detections import Detections
from vision.detector import Detector, load_detector
from vision.manifest import ModelManifest, load_manifest

log = logging.getLogger("streetwatch.edge")


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
        self.privacy = EdgePrivacy(config, lambda: self.manifest)
        self._recovered: dict[str, list[ConfirmedIssue]] = {}  # camera → confirmed before a crash
        self._stop = threading.Event()
        self.evidence = EvidenceThread(self._make_event, self._store, self._stop)
        self._workers: dict = {}
        self._threads: list[threading.Thread] = []
        self.scheduler = None
        self.metrics = None
        self.http = None
        self.verifier = None
        self._verifying: VerifierThread | None = None  # runs self.verifier, with verify_fixes
        self.fleet = None  # heartbeat and central zones, with api.box_id (streams/fleet_link.py)
        self.snapshots = None  # the snapshot cameras' scheduler, made with the first one (streams/snapshot_setup.py)

    def _camera_state(self, cam: CameraConfig) -> CameraState:
        return new_camera_state(self.config, cam, list(self.manifest.classes), self._issue_type_of, self._threshold_of)

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
    def analyse(self, camera: str, detections: Detections, captured_at: float,
                frame_size: tuple[int, int] | None = None) -> list[ConfirmedIssue]:
        """Zones and masks, tracking, hysteresis and confirmation for one analysed frame
        (`frame_size`, (w, h), lets a change of the camera's resolution be followed)."""
        return analyse_frame(self.cameras[camera], detections, captured_at, frame_size, self._issue_type_of, self._tz)

    def process_frame(self, camera: str, image: np.ndarray, captured_at: float) -> list[OutgoingEvent]:
        """Detect, analyse and render the events of one frame, synchronously."""
        detections = self.detector.detect(image)
        issues = self.analyse(camera, detections, captured_at, (image.shape[1], image.shape[0]))
        return [self._make_event(self.cameras[camera], image, issue, detections) for issue in issues]

    def _make_event(self, state: CameraState, image: np.ndarray, issue: ConfirmedIssue,
                    detections: Detections | None = None, manifest: ModelManifest | None = None) -> OutgoingEvent:
        # the model that saw it, if another runs by now
        return build_event(state, image, issue, detections, manifest or self.manifest, self.privacy)

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
            self.evidence.queue.put((state, frame.image, issue, detections, self.manifest))
        if self.fleet is not None:
            self.fleet.saw(camera, frame.image, detections)  # its snapshot, when one is due (cheap)
        for issue in self._recovered.pop(camera, []):
            log.info("camera %s: rendering event %s, confirmed before a restart, from a frame taken now",
                     camera, issue.event_id)
            self.evidence.queue.put((state, frame.image, issue, detections, self.manifest))
        if self._verifying is not None and self.verifier.watches.get(camera):
            self._verifying.offer(state, frame.image, detections)

    def _evidence_loop(self) -> None:
        self.evidence.run()

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
            self._verifying = VerifierThread(self.verifier, self.privacy, self._issue_type_of, self._threshold_of,
                                             self._stop)
            threading.Thread(target=self._verifying.run, name="verifier", daemon=True).start()
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

    @property
    def pending(self):
        """Rendered events the outbox refused (a full disk), waiting in memory to be stored."""
        return self.evidence.pending

    @property
    def evidence_errors(self) -> int:
        """Confirmed events that could not be rendered or stored at all."""
        return self.evidence.errors

    def evidence_backlog(self) -> int:
        """Confirmed events still waiting to be blurred, rendered and stored."""
        return self.evidence.queue.qsize()

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
