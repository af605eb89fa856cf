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
from api.workforce_tables import (  # noqa: F401 (re-exported: the tables live in one namespace)
    WorkerBase, WorkerCreate, WorkerUpdate, Worker, WorkerPublic, GridBase, GridCreate, GridUpdate, Grid, GridPublic, MAX_WORKER_GRIDS, MAX_GRID_CAMERAS, MAX_GRID_CORNERS, distinct,
)

Box = tuple[float, float, float, float]


def _enum(cls: type[StrEnum]) -> sa.Enum:
    # Stored as short strings, not native PostgreSQL enums: adding a state later is then a
    # plain migration instead of an ALTER TYPE.
    return sa.Enum(cls, native_enum=False, length=32)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(ts: datetime) -> datetime:
    """SQLite hands datetimes back naive; everything stored here is UTC."""
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=timezone.utc)


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
# Where an order's loop has ended, for now: a sighting soon after counts as a recurrence.
DONE_STATES = (OrderState.resolved, OrderState.closed, OrderState.rejected)


class OrderSource(StrEnum):
    camera = "camera"
    citizen = "citizen"


class RejectReason(StrEnum):
    """Why a reviewer called an order a false alarm (fixed list, so statistics can count them)."""

    not_an_issue = "not_an_issue"  # e.g. a parked delivery van taken for a stall
    wrong_type = "wrong_type"
    duplicate = "duplicate"
    permitted = "permitted"  # e.g. a licensed market
    outside_jurisdiction = "outside_jurisdiction"
    other = "other"


# Rejections that say the model saw something that is not there (or not that): false alarms.
# A duplicate, a permitted market or another authority's street is a real issue, correctly
# seen, that this order will not handle: the model was right, and must not learn otherwise.
FALSE_ALARM_REASONS = frozenset({RejectReason.not_an_issue, RejectReason.wrong_type, RejectReason.other})


def is_false_alarm(state: "OrderState", reason: RejectReason | None) -> bool:
    return state == OrderState.rejected and (reason is None or reason in FALSE_ALARM_REASONS)


class CameraBase(SQLModel):
    name: str = Field(index=True, unique=True, max_length=100)
    lat: float | None = None
    lon: float | None = None
    grid_id: str | None = Field(default=None, max_length=100)


class Camera(CameraBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    first_seen: datetime = Field(default_factory=utcnow)
    last_seen: datetime = Field(default_factory=utcnow)
    # [[px, py, lat, lon], ...] (at least 4 points on the road): pixel → ground mapping.
    ground_points: list[list[float]] | None = Field(default=None, sa_type=sa.JSON)
    # When an admin last placed the camera (PUT /api/v1/cameras/{name}): from then on the
    # placement is the API's, and events no longer move the camera's position or grid.
    placed_at: datetime | None = None


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


class OrderBase(SQLModel):
    issue_type: IssueType = Field(sa_type=_enum(IssueType), index=True)
    state: OrderState = Field(default=OrderState.reported, sa_type=_enum(OrderState), index=True)
    source: OrderSource = Field(default=OrderSource.camera, sa_type=_enum(OrderSource))
    first_seen: datetime
    last_seen: datetime
    event_count: int = 1
    model_name: str | None = None
    model_version: str | None = None
    # Newest pixel box of the issue in its camera's frame; None for citizen-reported orders.
    x1: float | None = None
    y1: float | None = None
    x2: float | None = None
    y2: float | None = None
    frame_width: int | None = None
    frame_height: int | None = None
    # Where the issue is: ground-mapped box, else the camera's position, else the reporter's.
    lat: float | None = None
    lon: float | None = None
    grid_id: str | None = Field(default=None, max_length=100, index=True)
    worker_id: int | None = Field(default=None, foreign_key="worker.id", index=True)
    unassigned: bool = False
    recurrence_of: int | None = Field(default=None, foreign_key="order.id")
    sla_due_at: datetime | None = None
    escalated_at: datetime | None = None
    dispatched_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    cleared_by_camera: bool = False
    cleared_at: datetime | None = None
    verified_at: datetime | None = None
    reject_reason: RejectReason | None = Field(default=None, sa_type=_enum(RejectReason))
    corrected_type: IssueType | None = Field(default=None, sa_type=_enum(IssueType))  # rejected as wrong_type
    rating: int | None = None
    evaluation: str | None = None

    @property
    def box(self) -> Box | None:
        if self.x1 is None or self.y1 is None or self.x2 is None or self.y2 is None:
            return None
        return (self.x1, self.y1, self.x2, self.y2)


class Order(OrderBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    camera_id: int | None = Field(default=None, foreign_key="camera.id", index=True)
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
    lat: float | None = None  # where this sighting puts the issue (see api/location.py)
    lon: float | None = None


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
    report_id: int | None = Field(default=None, foreign_key="report.id")
    audit_id: int | None = Field(default=None, foreign_key="audit_entry.id")  # e.g. a resolution photo
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
    camera: str | None = Field(description="camera name; None for citizen-reported orders")
    bbox: Box | None = Field(description="newest box of the issue: x1, y1, x2, y2 in pixels (camera orders)")
    overdue: bool = Field(description="still open after its SLA deadline")
    created_at: datetime
    updated_at: datetime
    snapshot_url: str | None = Field(description="presigned URL of the newest annotated evidence, if any")


class OrdersPublic(SQLModel):
    data: list[OrderPublic]
    count: int = Field(description="orders matching the filters, ignoring limit/offset/cursor")
    next_cursor: str | None = Field(default=None, description="pass as `cursor` for the next page; None at the end")


class CommentBase(SQLModel):
    text: str = Field(min_length=1, max_length=4000)


class Comment(CommentBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="order.id", index=True)
    author: str = Field(max_length=100)
    role: str = Field(max_length=16)
    at: datetime = Field(default_factory=utcnow)


class CommentPublic(CommentBase):
    id: int
    author: str
    role: str
    at: datetime


# --- the audit log: one append-only row per transition or system action -------------------

class AuditEntryBase(SQLModel):
    order_id: int = Field(foreign_key="order.id", index=True)
    action: str = Field(max_length=32)  # "transition", "dispatch", "escalate", "cleared", "verified", ...
    from_state: OrderState | None = Field(default=None, sa_type=_enum(OrderState))
    to_state: OrderState | None = Field(default=None, sa_type=_enum(OrderState))
    actor: str = Field(max_length=100)  # key name, or "system" / "camera:<name>"
    role: str = Field(max_length=16)
    note: str | None = None
    at: datetime = Field(default_factory=utcnow)


class AuditEntry(AuditEntryBase, table=True):
    __tablename__ = "audit_entry"
    id: int | None = Field(default=None, primary_key=True)


class AuditEntryPublic(AuditEntryBase):
    id: int


# --- citizen reports, notifications, API keys ------------------------------------------------

class Report(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    tracking_id: str = Field(unique=True, index=True, max_length=32)
    order_id: int = Field(foreign_key="order.id", index=True)
    issue_type: IssueType = Field(sa_type=_enum(IssueType))
    lat: float
    lon: float
    text: str | None = None
    contact: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow)


class Notification(SQLModel, table=True):
    """A message for a person (a worker by id, or a grid supervisor by name), e.g. 'order 12 reopened'."""

    id: int | None = Field(default=None, primary_key=True)
    order_id: int | None = Field(default=None, foreign_key="order.id", index=True)  # None: about a camera or box
    worker_id: int | None = Field(default=None, foreign_key="worker.id", index=True)
    supervisor: str | None = Field(default=None, max_length=100)
    camera: str | None = Field(default=None, max_length=100)  # a blind camera's name (api/fleet_alerts.py)
    box_id: str | None = Field(default=None, max_length=100)  # a silent box
    kind: str = Field(max_length=32)
    message: str
    created_at: datetime = Field(default_factory=utcnow)


class Role(StrEnum):
    edge = "edge"  # posts events, reports camera verifications
    reviewer = "reviewer"  # confirms, rejects, dispatches
    worker = "worker"  # moves own orders to in_progress / resolved
    admin = "admin"  # everything, and cameras, grids, workers, keys
    open311_client = "open311_client"  # a 311 app: files service requests through Open311 (POST requests)


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_key"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    role: Role = Field(sa_type=_enum(Role))
    key_hash: str = Field(unique=True, max_length=64)  # sha256 of the key: keys are long random tokens
    worker_id: int | None = Field(default=None, foreign_key="worker.id")
    box_id: str | None = Field(default=None, max_length=100)  # an edge key speaks only for this box's cameras
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None
