"""SQLModel tables and their public shapes: cameras, orders, events, evidence."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from api.schemas import EvidenceKind, IssueType


def _enum(cls) -> sa.Enum:
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


OPEN_STATES = (OrderState.reported, OrderState.dispatched, OrderState.in_progress, OrderState.reopened)


class Camera(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=100)
    lat: float | None = None
    lon: float | None = None
    grid_id: str | None = Field(default=None, max_length=100)
    first_seen: datetime = Field(default_factory=utcnow)
    last_seen: datetime = Field(default_factory=utcnow)


class BoxFields(SQLModel):
    x1: float
    y1: float
    x2: float
    y2: float
    frame_width: int
    frame_height: int


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


class Event(BoxFields, table=True):
    id: int | None = Field(default=None, primary_key=True)
    event_id: uuid.UUID = Field(unique=True, index=True)  # the edge's idempotency key
    order_id: int = Field(foreign_key="order.id", index=True)
    camera_id: int = Field(foreign_key="camera.id")
    issue_type: IssueType = Field(sa_type=_enum(IssueType))
    class_name: str
    confidence: float
    first_seen: datetime
    confirmed_at: datetime
    received_at: datetime = Field(default_factory=utcnow)
    track_id: int | None = None
    model_name: str
    model_version: str


class Evidence(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="order.id", index=True)
    event_id: int | None = Field(default=None, foreign_key="event.id")
    kind: EvidenceKind = Field(sa_type=_enum(EvidenceKind))
    object_key: str = Field(unique=True)
    content_type: str
    size: int
    sha256: str = Field(max_length=64)
    width: int
    height: int
    created_at: datetime = Field(default_factory=utcnow)


class EvidencePublic(SQLModel):
    id: int
    kind: EvidenceKind
    object_key: str
    content_type: str
    size: int
    sha256: str
    width: int
    height: int
    created_at: datetime
    url: str  # presigned, expires after STREETWATCH_PRESIGN_EXPIRY_SECONDS


class EventPublic(SQLModel):
    event_id: uuid.UUID
    class_name: str
    confidence: float
    bbox: tuple[float, float, float, float]
    first_seen: datetime
    confirmed_at: datetime
    received_at: datetime
    model_name: str
    model_version: str


class OrderPublic(OrderBase):
    id: int
    camera: str
    bbox: tuple[float, float, float, float]
    created_at: datetime
    updated_at: datetime
    snapshot_url: str | None  # the newest annotated evidence


class OrderDetail(OrderPublic):
    evidence: list[EvidencePublic]
    events: list[EventPublic]


class OrdersPublic(SQLModel):
    data: list[OrderPublic]
    count: int
