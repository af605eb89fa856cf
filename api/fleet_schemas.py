"""The fleet's wire contract: what an edge box sends in its heartbeat, and what the API answers.

The edge (streams/heartbeat.py) builds its heartbeat from these models, so this module stays
light like api/schemas.py: pydantic only.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.schemas import Text, UtcDateTime

NAME_PATTERN = r"^[A-Za-z0-9_.\-]+$"
BoxId = Annotated[str, Field(min_length=1, max_length=100, pattern=NAME_PATTERN)]


class CameraHealthState(StrEnum):
    """What the box says of a camera, and `offline` when the API no longer hears the box."""

    streaming = "streaming"
    reconnecting = "reconnecting"  # lost, within the stall timeout
    stalled = "stalled"  # no frame for the stall timeout
    failed = "failed"  # it answers but refuses (wrong path or password)
    disabled = "disabled"  # switched off in the box's config: no alert, not in the online rate
    offline = "offline"  # set by the API only: the camera's box stopped sending heartbeats


# What a box may say: `offline` is the API's conclusion, never the box's.
ReportedState = Literal["streaming", "reconnecting", "stalled", "failed", "disabled"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ModelInfo(Strict):
    name: Text = Field(min_length=1, max_length=100)
    version: Text = Field(min_length=1, max_length=100)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$", description="of the weights the box runs")


class CameraReport(Strict):
    name: str = Field(min_length=1, max_length=100, pattern=NAME_PATTERN)
    state: ReportedState
    last_frame_at: UtcDateTime | None = None
    fps: float = Field(default=0.0, ge=0, le=1000, description="analysed frames per second, recently")
    damaged_packets: int = Field(default=0, ge=0, description="since the box started")
    # From the box's config: they place a camera the API has not seen yet (an admin's
    # placement, PUT /api/v1/cameras/{name}, is never moved by them).
    grid_id: Text | None = Field(default=None, max_length=100)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)


class HeartbeatIn(Strict):
    software_version: Text = Field(min_length=1, max_length=100)
    interval_s: float = Field(default=30.0, gt=0, le=3600, description="the box's heartbeat interval: three "
                                                                       "missed ones and it counts as silent")
    model: ModelInfo | None = None
    model_error: Text | None = Field(default=None, max_length=2000, description="why the box is not on the model "
                                                                                "it was told to run")
    outbox_depth: int = Field(default=0, ge=0, description="events waiting on the box to be sent")
    cameras: list[CameraReport] = Field(default_factory=list, max_length=1000)

    @field_validator("cameras")
    @classmethod
    def _unique(cls, value: list[CameraReport]) -> list[CameraReport]:
        names = [c.name for c in value]
        if len(set(names)) == len(names):
            return value
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"camera names must be unique; repeated: {', '.join(repeated)}")
        return value


class HeartbeatAccepted(BaseModel):
    box_id: str
    cameras: int
    changes: int = Field(description="camera states that changed with this heartbeat")


class BoxPublic(BaseModel):
    id: str
    online: bool = Field(description="heard from within three of its heartbeat intervals (as of the last sweep)")
    last_heartbeat_at: datetime | None
    heartbeat_interval_s: float | None
    offline_since: datetime | None
    software_version: str | None
    model: ModelInfo | None
    model_error: str | None
    outbox_depth: int
    cameras: int
    cameras_streaming: int


class CameraHealthPublic(BaseModel):
    name: str
    box_id: str | None
    grid_id: str | None
    lat: float | None
    lon: float | None
    state: CameraHealthState | None = Field(description="None: no box has reported the camera (events only)")
    state_since: datetime | None
    last_frame_at: datetime | None
    fps: float | None
    damaged_packets: int | None
    last_seen: datetime | None = Field(description="the box's last heartbeat that reported the camera")
    last_event_at: datetime = Field(description="the camera's last event (or its registration)")
    offline_alert_since: datetime | None = Field(description="its grid's supervisor was told it is blind")
    snapshot_at: datetime | None = Field(default=None, description="when its box last sent a snapshot "
                                                                   "(GET /api/v1/cameras/{name}/snapshot); None: none yet")


class StateChangePublic(BaseModel):
    camera: str
    box_id: str
    from_state: CameraHealthState | None
    to_state: CameraHealthState
    at: datetime
