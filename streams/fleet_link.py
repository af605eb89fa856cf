"""What a box in a fleet runs beside its cameras (with `api.box_id` in its config): the
heartbeat (streams/heartbeat.py) and the central zones (streams/remote_config.py)."""

from __future__ import annotations

from typing import Any

from streams.heartbeat import HeartbeatSender, start_heartbeat
from streams.remote_config import RemoteZones, start_remote_zones


class FleetLink:
    def __init__(self, pipeline: Any):
        # The heartbeat first: the API takes a box's events only for cameras it has declared.
        self.heartbeat: HeartbeatSender = start_heartbeat(pipeline)
        self.zones: RemoteZones = start_remote_zones(pipeline)

    def stop(self) -> None:
        self.heartbeat.stop()
        self.zones.stop()
