"""What a box in a fleet runs beside its cameras (with `api.box_id` in its config): the
heartbeat (streams/heartbeat.py), the central zones (streams/remote_config.py), the model
rollout (streams/model_rollout.py), which learns its model from the same config pull, and the
cameras' snapshots (streams/camera_snapshots.py)."""

from __future__ import annotations

from typing import Any

import httpx

from streams.camera_snapshots import SnapshotUploader, start_snapshots
from streams.heartbeat import HeartbeatSender, start_heartbeat
from streams.model_rollout import ModelRollout
from streams.remote_config import RemoteZones, start_remote_zones


class FleetLink:
    def __init__(self, pipeline: Any):
        cfg = pipeline.config
        headers = {"Authorization": f"Bearer {cfg.api.key}"} if cfg.api.key else {}
        client = httpx.Client(base_url=cfg.api.url, headers=headers, timeout=cfg.api.timeout_s)
        self.rollout = ModelRollout(pipeline, client, cfg.outbox.path / "models", retry_s=cfg.api.config_poll_s)
        # The heartbeat first: the API takes a box's events only for cameras it has declared.
        self.heartbeat: HeartbeatSender = start_heartbeat(pipeline, lambda: self.rollout.error)
        self.zones: RemoteZones = start_remote_zones(pipeline, self.rollout.assign)
        self.rollout.start()
        self.snapshots: SnapshotUploader | None = start_snapshots(pipeline, headers)

    def saw(self, camera: str, image: Any, detections: Any) -> None:
        """An analysed frame (the inference thread): the camera's snapshot takes it when one is due."""
        if self.snapshots is not None:
            self.snapshots.offer(camera, image, detections)

    def stop(self) -> None:
        if self.snapshots is not None:
            self.snapshots.stop()
            self.snapshots.client.close()
        self.heartbeat.stop()
        self.zones.stop()
        self.rollout.stop()
        self.rollout.client.close()
