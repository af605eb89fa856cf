"""Tables of the fleet: edge boxes, the health of their cameras, and its history.

Written so that a heartbeat costs one row update however many cameras the box has: the
volatile per-camera figures (last frame, frames per second, damaged packets) ride in the box's
`live` JSON column; a camera's own row and a history row are written only when its state
changes. (A row per camera per heartbeat would be 20,000 rows every 30 s for a city.)
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from api.fleet_schemas import CameraHealthState
from api.models import _enum, utcnow


class EdgeBox(SQLModel, table=True):
    __tablename__ = "edge_box"
    id: str = Field(primary_key=True, max_length=100)
    created_at: datetime = Field(default_factory=utcnow)
    last_heartbeat_at: datetime | None = None
    heartbeat_interval_s: float | None = None  # what the box says it uses: silence is judged by it
    software_version: str | None = Field(default=None, max_length=100)
    model_name: str | None = Field(default=None, max_length=100)
    model_version: str | None = Field(default=None, max_length=100)
    model_sha256: str | None = Field(default=None, max_length=64)
    model_error: str | None = None  # why the box is not on the model assigned to it
    outbox_depth: int = 0
    # {camera name: {"last_frame_at": iso | null, "fps": float, "damaged_packets": int}}
    live: dict = Field(default_factory=dict, sa_type=sa.JSON)
    offline_since: datetime | None = None  # set by the sweep when the box has fallen silent
    offline_alert_at: datetime | None = None  # its supervisors were told
    # Of the camera states the box last reported in a fully recorded heartbeat; cleared by
    # whatever else changes its cameras' rows (api/heartbeats.py). None: the next one is full.
    states_digest: str | None = Field(default=None, max_length=32)


class CameraStatus(SQLModel, table=True):
    """A camera's box (the only one whose key may speak for it) and its current state."""

    __tablename__ = "camera_status"
    camera_id: int = Field(primary_key=True, foreign_key="camera.id")
    box_id: str = Field(foreign_key="edge_box.id", index=True, max_length=100)
    state: CameraHealthState = Field(sa_type=_enum(CameraHealthState))
    state_since: datetime = Field(default_factory=utcnow)
    # Since when it has not been streaming (None while it streams): reconnecting → stalled →
    # reconnecting is one outage, and the alert's clock must not start again at each step.
    down_since: datetime | None = None
    offline_alert_at: datetime | None = None  # the grid's supervisor was told it is blind


class CameraStateChange(SQLModel, table=True):
    """One row per change of a camera's state (not per heartbeat): the online rate's source."""

    __tablename__ = "camera_state_change"
    id: int | None = Field(default=None, primary_key=True)
    camera_id: int = Field(foreign_key="camera.id", index=True)
    box_id: str = Field(max_length=100)
    from_state: CameraHealthState | None = Field(default=None, sa_type=_enum(CameraHealthState))
    to_state: CameraHealthState = Field(sa_type=_enum(CameraHealthState))
    at: datetime = Field(default_factory=utcnow, index=True)


class SweepLease(SQLModel, table=True):
    """Who runs the periodic sweep this interval: one API process among all, on any host."""

    __tablename__ = "sweep_lease"
    name: str = Field(primary_key=True, max_length=50)
    holder: str = Field(max_length=200)
    expires_at: datetime
    rounds: int = 0  # sweeps run under this lease, all processes together


class CameraZones(SQLModel, table=True):
    """A camera's zones and masks edited centrally (api/zone_schemas.py): they replace those of
    its box's YAML, which the box pulls and applies without a restart."""

    __tablename__ = "camera_zones"
    camera_id: int = Field(primary_key=True, foreign_key="camera.id")
    frame_width: int
    frame_height: int
    zones: dict = Field(default_factory=dict, sa_type=sa.JSON)
    masks: list = Field(default_factory=list, sa_type=sa.JSON)
    updated_at: datetime = Field(default_factory=utcnow)
    updated_by: str = Field(max_length=100)


class CameraSnapshot(SQLModel, table=True):
    """A camera's latest privacy-blurred frame (api/camera_snapshots.py): one object per camera
    in the evidence store, overwritten by each upload; this row says when and by which box."""

    __tablename__ = "camera_snapshot"
    camera_id: int = Field(primary_key=True, foreign_key="camera.id")
    box_id: str | None = Field(default=None, max_length=100)  # None: an admin's or an unbound edge key's upload
    object_key: str = Field(max_length=300)
    sha256: str = Field(max_length=64)
    size: int
    width: int
    height: int
    uploaded_at: datetime = Field(default_factory=utcnow)
