"""The edge's snapshot cameras: their grabbers, made from the config, and the one scheduler
and HTTP client they share (created with the first snapshot camera of a pipeline)."""

from __future__ import annotations

from typing import Callable

from streams.config import CameraConfig, EdgeConfig
from streams.grab import Grabber
from streams.rtsp import Frame
from streams.sampling import camera_interval, camera_mode, camera_transport
from streams.snapshot_scheduler import SnapshotCamera, SnapshotScheduler


class SnapshotCameras:
    def __init__(self, cfg: EdgeConfig, on_frame: Callable[[str, Frame], None], queue_depth: Callable[[], int],
                 inference_workers: int):
        self.cfg = cfg
        snap = cfg.snapshot
        # More than a few batches waiting per worker: grabbing more only replaces waiting frames.
        limit = max(32, 4 * cfg.max_batch * inference_workers)
        self.scheduler = SnapshotScheduler(on_frame, snap.max_concurrent, group=cfg.max_batch,
                                           backoff_max_s=snap.backoff_max_s, queue_depth=queue_depth, queue_limit=limit)
        self._http = None
        self.scheduler.start()

    def grabber(self, cam: CameraConfig) -> Grabber:
        cfg, snap = self.cfg, self.cfg.snapshot
        if camera_mode(cfg, cam) == "http_snapshot":
            from streams.snapshot_http import HttpSnapshotGrabber, snapshot_client

            if self._http is None:
                self._http = snapshot_client(snap.max_concurrent)
            return HttpSnapshotGrabber(cam.snapshot_url, self._http, snap.timeout_s)
        from streams.snapshot_rtsp import RtspSnapshotGrabber

        return RtspSnapshotGrabber(cam.url, camera_transport(cfg, cam), cam.rtsp_client or cfg.rtsp_client,
                                   snap.timeout_s, snap.keyframe_timeout_s)

    def add(self, cam: CameraConfig) -> SnapshotCamera:
        return self.scheduler.add(cam.name, self.grabber(cam), camera_interval(self.cfg, cam),
                                  camera_mode(self.cfg, cam))

    def stats(self) -> dict:
        return self.scheduler.stats()

    def stop(self) -> None:
        self.scheduler.stop()
        if self._http is not None:
            self._http.close()
