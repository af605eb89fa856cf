"""The wire contract between the edge box and the API.

The edge (streams/) imports this module to build the events it posts, so it must stay
light: pydantic only, no database, no web framework.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timezone
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator


# Row ids are PostgreSQL INTEGERs: a larger id in a path or body is refused with 422 instead
# of overflowing the database driver.
MAX_ID = 2**31 - 1


def to_utc(ts: datetime) -> datetime:
    """A time without an offset is taken as UTC (what everything here is stored in)."""
    try:
        return (ts if ts.tzinfo is not None else ts.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    except OverflowError as exc:  # e.g. 0001-01-01T01:00+05:00 lies before year 1 in UTC
        raise ValueError("date out of range once converted to UTC") from exc


# Query and body times: naive ones are UTC, and all compare with the stored (UTC) ones.
UtcDateTime = Annotated[datetime, AfterValidator(to_utc)]


NUL_REFUSED = "must not contain NUL (U+0000) characters"
NOT_UTF8 = "must be UTF-8 text (it came in another encoding, e.g. GBK)"
_SURROGATE = re.compile("[\ud800-\udfff]")


def no_nul(value: str) -> str:
    # PostgreSQL text cannot hold U+0000 (SQLite can): refused here, where the error names the
    # field, rather than by the database in the middle of an ingest.
    if "\x00" in value:
        raise ValueError(NUL_REFUSED)
    if value.isascii():  # most text, and no surrogate in it: the search below is not needed
        return value
    # A lone surrogate is no character: bytes that were not UTF-8 (api/form_text.py), or a
    # JSON "\ud800" escape. Either would be stored as garble or fail in the database.
    if _SURROGATE.search(value):
        raise ValueError(NOT_UTF8)
    return value


# Free text from a client: any characters but NUL.
Text = Annotated[str, AfterValidator(no_nul)]


def both_or_neither(model: BaseModel, a: str = "lat", b: str = "lon") -> None:
    """Half a position (a lat without its lon) is refused rather than stored beside another's half."""
    fields = model.model_fields_set
    if (a in fields) != (b in fields) or (getattr(model, a) is None) != (getattr(model, b) is None):
        raise ValueError(f"{a} and {b} go together: give both or neither")


class IssueType(StrEnum):
    street_vending = "street_vending"
    clutter = "clutter"
    flooding = "flooding"


class EvidenceKind(StrEnum):
    frame = "frame"  # the full analysed frame
    annotated = "annotated"  # the frame with the box and label drawn
    crop = "crop"  # the box region with some context
    # Not sent with events: a citizen's photo, a worker's photo of the fix, and the camera's
    # frames before the fix and after it when the edge re-checks a resolved order.
    report = "report"
    resolution = "resolution"
    before = "before"
    after = "after"


class CameraRef(BaseModel):
    """What the edge knows about the camera that saw the issue."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.\-]+$")
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    grid_id: Text | None = Field(default=None, max_length=100)

    @model_validator(mode="after")
    def _whole_position(self) -> "CameraRef":
        both_or_neither(self)
        return self


class ModelRef(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    name: Text = Field(min_length=1, max_length=100)
    version: Text = Field(min_length=1, max_length=50)


class EventIn(BaseModel):
    """One confirmed issue seen by one camera: the JSON part of POST /api/v1/events.

    `event_id` is the idempotency key: posting the same event twice yields one event.
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    event_id: uuid.UUID
    camera: CameraRef
    issue_type: IssueType
    class_name: Text = Field(min_length=1, max_length=100)
    confidence: float = Field(ge=0.0, le=1.0)
    # Pixel box in the full frame: x1, y1, x2, y2.
    bbox: tuple[float, float, float, float]
    frame_width: int = Field(gt=0, le=16384)
    frame_height: int = Field(gt=0, le=16384)
    first_seen: datetime
    confirmed_at: datetime
    track_id: int | None = Field(default=None, ge=0, le=MAX_ID)
    model: ModelRef

    @field_validator("first_seen", "confirmed_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("must carry a timezone (e.g. 2026-01-01T12:00:00Z)")
        return to_utc(value)

    @model_validator(mode="after")
    def _box_inside_frame(self) -> "EventIn":
        x1, y1, x2, y2 = self.bbox
        if not (0 <= x1 < x2 <= self.frame_width and 0 <= y1 < y2 <= self.frame_height):
            raise ValueError(
                f"bbox {list(self.bbox)} must satisfy 0 <= x1 < x2 <= frame_width and "
                f"0 <= y1 < y2 <= frame_height ({self.frame_width}x{self.frame_height})"
            )
        if self.confirmed_at < self.first_seen:
            raise ValueError("confirmed_at is before first_seen")
        return self


class EventAccepted(BaseModel):
    """Answer to POST /api/v1/events (201 on first receipt, 200 on a replay)."""

    event_id: uuid.UUID
    order_id: int
    new_order: bool  # False when the event joined an existing open order
    replay: bool  # True when this event_id had been received before
