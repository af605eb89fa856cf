"""Zones and masks of a camera as the API takes them (drawn over its snapshot by an admin) and
hands them to its box (streams/remote_config.py). Pydantic only: the edge imports it too.

Polygons are in the pixels of a frame_width × frame_height frame (the camera's). Refused with
the reason: fewer than 3 distinct corners (it does not close), edges that cross (it
self-intersects), a corner outside the frame, no area.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.model_schemas import AssignedModel
from api.schemas import IssueType

MAX_CORNERS = 100
MAX_AREAS = 50
_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
Point = tuple[float, float]


def _check_hours(value: list[str]) -> list[str]:
    # The same rule as vision.zones.parse_hours, which the API cannot import (OpenCV).
    for text in value:
        m = _HOURS.match(text.strip())
        if not m or (m.group(3) == "24" and m.group(4) != "00") or m.group(1, 2) == m.group(3, 4):
            raise ValueError(f"hours must look like 18:00-23:00 (24-hour clock, not empty), got {text!r}")
    return value


def _cross(o: Point, a: Point, b: Point) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _segments_cross(p1: Point, p2: Point, q1: Point, q2: Point) -> bool:
    """True if the segments share a point (touching counts: a polygon that touches itself is
    two polygons, and pointPolygonTest would disagree with the person who drew it)."""
    d1, d2, d3, d4 = _cross(q1, q2, p1), _cross(q1, q2, p2), _cross(p1, p2, q1), _cross(p1, p2, q2)
    if ((d1 > 0) != (d2 > 0) and d1 != 0 and d2 != 0) and ((d3 > 0) != (d4 > 0) and d3 != 0 and d4 != 0):
        return True

    def on(a: Point, b: Point, c: Point) -> bool:
        return min(a[0], b[0]) <= c[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= c[1] <= max(a[1], b[1])

    return (d1 == 0 and on(q1, q2, p1)) or (d2 == 0 and on(q1, q2, p2)) or (d3 == 0 and on(p1, p2, q1)) \
        or (d4 == 0 and on(p1, p2, q2))


def polygon_problem(points: list[Point], width: int, height: int) -> str | None:
    """Why this polygon cannot be used, or None."""
    if len(points) > 1 and points[0] == points[-1]:
        points = points[:-1]  # a closing corner repeated is fine
    distinct = list(dict.fromkeys(points))
    if len(distinct) < 3 or len(distinct) != len(points):
        return "does not close: needs at least 3 distinct corners, none repeated"
    for i, (x, y) in enumerate(points):
        if not (0 <= x <= width and 0 <= y <= height):
            return f"corner {i} ({x:g}, {y:g}) lies outside the {width}x{height} frame"
    n = len(points)
    edges = [(points[i], points[(i + 1) % n]) for i in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            if j == i + 1 or (i == 0 and j == n - 1):
                continue  # neighbours share a corner
            if _segments_cross(*edges[i], *edges[j]):
                return f"self-intersects: edge {i} crosses edge {j}"
    area = sum(_cross((0, 0), points[i], points[(i + 1) % n]) for i in range(n)) / 2
    if area == 0:
        return "has no area: its corners lie on one line"
    return None


class AreaIn(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    polygon: list[Point] = Field(min_length=3, max_length=MAX_CORNERS + 1)
    issue_types: list[IssueType] = Field(default_factory=list, description="empty: every type")
    anchor: Point = (0.5, 1.0)
    hours: list[str] = Field(default_factory=list, max_length=10, description='"HH:MM-HH:MM" local; empty: always')

    @field_validator("anchor")
    @classmethod
    def _unit(cls, v: Point) -> Point:
        if not (0 <= v[0] <= 1 and 0 <= v[1] <= 1):
            raise ValueError("anchor is a fraction of the box: both values between 0 and 1")
        return v

    @field_validator("hours")
    @classmethod
    def _hours(cls, v: list[str]) -> list[str]:
        return _check_hours(v)


class CameraZonesIn(BaseModel):
    """A camera's zones and masks, replacing those of the box's YAML for this camera."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    frame_width: int = Field(ge=16, le=16384, description="the frame the polygons were drawn on")
    frame_height: int = Field(ge=16, le=16384)
    zones: dict[str, AreaIn] = Field(default_factory=dict, max_length=MAX_AREAS)
    masks: list[AreaIn] = Field(default_factory=list, max_length=MAX_AREAS)

    @field_validator("zones")
    @classmethod
    def _names(cls, v: dict[str, AreaIn]) -> dict[str, AreaIn]:
        for name in v:
            if not re.fullmatch(r"[A-Za-z0-9_.\-]{1,100}", name):
                raise ValueError(f"zone name {name!r}: 1-100 letters, digits, '_', '.' or '-'")
        return v

    def first_problem(self) -> tuple[tuple[str, ...], str] | None:
        """(where, why) of the first polygon that cannot be used; None if all can."""
        where: list[tuple[tuple[str, ...], AreaIn]] = [(("zones", n), z) for n, z in self.zones.items()]
        where += [(("masks", str(i)), m) for i, m in enumerate(self.masks)]
        for loc, area in where:
            problem = polygon_problem(list(area.polygon), self.frame_width, self.frame_height)
            if problem:
                return (*loc, "polygon"), problem
        return None


class CameraZonesPublic(CameraZonesIn):
    camera: str
    updated_at: datetime
    updated_by: str


class BoxConfig(BaseModel):
    """What a box pulls: the central zones and masks of its cameras (those the API has any for)."""

    box_id: str
    etag: str
    cameras: dict[str, CameraZonesIn]
    # The model the box is to run (api/model_registry.py); None: none assigned, it keeps its own.
    model: AssignedModel | None = None
    kind: Literal["streetwatch-box-config"] = "streetwatch-box-config"
