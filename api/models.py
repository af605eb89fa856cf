"""SQLModel tables and their public shapes: cameras, orders, events, evidence.

Families follow the full-stack-fastapi-template: `XBase` (shared fields) → `X(table=True)`
→ `XPublic` (what the API returns). Orders are created from the wire contract
(`api.schemas.EventIn`), so there is no `OrderCreate`.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from api.schemas import EvidenceKind, IssueType

Box = tuple[float, float, float, float]


def _enum(cls: type[StrEnum]) -> sa.Enum:
    # Stored as short strings, not native PostgreSQL enums: adding a state later is then a
    # plain migration instead of an ALTER TYPE.
    return sa.Enum(cls, native_enum=False, length=32)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class OrderState(StrEnum):
    reported = "reported"
    dispatched = "dispatched"
    in_progress = "in_progress"
    resolved = "resolved"
    closed = "closed"
    rejected = "rejected"
    reopened = "reopened"


# New sightings of an issue join an order only while someone still has to act on it.
OPEN_STATES = (OrderState.reported, OrderState.dispatched, OrderState.in_progress, OrderState.reopened)


class CameraBase(SQLModel):
    name: str = Field(index=True, unique=True, max_length=100)
    lat: float | None = None
    lon: float | None = None
    grid_id: str | None = Field(default=None, max_length=100)


class Camera(CameraBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    first_seen: datetime = Field(default_factory=utcnow)
    last_seen: datetime = Field(default_factory=utcnow)


class BoxFields(SQLModel):
    """A pixel box x1, y1, x2, y2 in a frame of frame_width × frame_height."""

    x1: float
    y1: float
    x2: float
    y2: float
    frame_width: int
    frame_height: int

    @property
    def box(self) -> Box:
        return (self.x1, self.y1, self.x2, self.y2)


class OrderBase(BoxFields):
    issue_type: IssueType = Field(sa_type=_enum(IssueType), index=True)
    state: OrderState = Field(default=OrderState.reported, sa_type=_enum(OrderState), index=True)
    first_seen: datetime
    last_seen: datetime
    event_count: int = 1
    model_name: str
    model_version: str


class Order(OrderBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    camera_id: int = Field(foreign_key="camera.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class EventBase(BoxFields):
    event_id: uuid.UUID = Field(unique=True, index=True)  # the edge's idempotency key
    issue_type: IssueType = Field(sa_type=_enum(IssueType))
    class_name: str
    confidence: float
    first_seen: datetime
    confirmed_at: datetime
    track_id: int | None = None
    model_name: str
    model_version: str


class Event(EventBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="order.id", index=True)
    camera_id: int = Field(foreign_key="camera.id")
    received_at: datetime = Field(default_factory=utcnow)


class EvidenceBase(SQLModel):
    kind: EvidenceKind = Field(sa_type=_enum(EvidenceKind))
    object_key: str = Field(unique=True)
    content_type: str
    size: int
    sha256: str = Field(max_length=64)
    width: int
    height: int


class Evidence(EvidenceBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="order.id", index=True)
    event_id: int | None = Field(default=None, foreign_key="event.id")
    created_at: datetime = Field(default_factory=utcnow)


class EvidencePublic(EvidenceBase):
    id: int
    created_at: datetime
    url: str = Field(description="presigned download URL; expires after STREETWATCH_PRESIGN_EXPIRY_SECONDS")


class EventPublic(EventBase):
    received_at: datetime
    bbox: Box


class OrderPublic(OrderBase):
    id: int
    camera: str = Field(description="camera name")
    bbox: Box = Field(description="newest box of the issue: x1, y1, x2, y2 in pixels")
    created_at: datetime
    updated_at: datetime
    snapshot_url: str | None = Field(description="presigned URL of the newest annotated evidence, if any")


class OrderDetail(OrderPublic):
    evidence: list[EvidencePublic]
    events: list[EventPublic]


class OrdersPublic(SQLModel):
    data: list[OrderPublic]
    count: int = Field(description="orders matching the filters, ignoring limit/offset")
