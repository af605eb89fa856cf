"""Per-camera zones and masks: where (and when) an issue type counts, and where nothing does.

As in Frigate, zones and masks are pixel polygons; unlike Frigate the point that places a
detection is configurable per area: the bottom centre of the box (0.5, 1.0) by default, where
a stall or a pile touches the ground, the centre (0.5, 0.5) for water, which has no feet.

* a mask drops the detections of its types (all types when none are listed) anchored inside;
* when a camera has zones, a detection counts only if anchored in a zone for its type;
* either may carry `hours` ("18:00-23:00", may wrap past midnight): outside them it does not
  exist. A night market permitted 18:00-23:00 is a street_vending mask with those hours.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from vision.detections import Detections

Polygon = Sequence[tuple[float, float]]
BOTTOM_CENTRE = (0.5, 1.0)
_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


def parse_hours(text: str) -> tuple[int, int]:
    """'18:00-23:00' → (1080, 1380) minutes of the day; the end may be 24:00 and may wrap."""
    m = _HOURS.match(text.strip())
    if not m or (m.group(3) == "24" and m.group(4) != "00"):
        raise ValueError(f"hours must look like 18:00-23:00 (24-hour clock), got {text!r}")
    start, end = int(m.group(1)) * 60 + int(m.group(2)), int(m.group(3)) * 60 + int(m.group(4))
    if start == end:
        raise ValueError(f"hours {text!r} is an empty range")
    return start, end


@dataclass(frozen=True)
class Area:
    polygon: np.ndarray  # (K, 1, 2) float32, as cv2.pointPolygonTest wants it
    issue_types: frozenset[str] = frozenset()  # empty: every type
    anchor: tuple[float, float] = BOTTOM_CENTRE
    hours: tuple[tuple[int, int], ...] = ()  # empty: always

    @classmethod
    def make(cls, polygon: Polygon, issue_types: Sequence[str] = (), anchor: tuple[float, float] = BOTTOM_CENTRE,
             hours: Sequence[str] = ()) -> "Area":
        return cls(np.asarray(polygon, dtype=np.float32).reshape(-1, 1, 2), frozenset(str(t) for t in issue_types),
                   (float(anchor[0]), float(anchor[1])), tuple(parse_hours(h) for h in hours))

    def active(self, minute: int | None) -> bool:
        """At this minute of the local day (None: ignore hours)."""
        if not self.hours or minute is None:
            return True
        return any(s <= minute < e if s < e else (minute >= s or minute < e) for s, e in self.hours)

    def applies_to(self, issue_type: str | None) -> bool:
        return not self.issue_types or issue_type in self.issue_types

    def contains(self, box: np.ndarray) -> bool:
        ax, ay = self.anchor
        x = box[0] + (box[2] - box[0]) * ax
        y = box[1] + (box[3] - box[1]) * ay
        return cv2.pointPolygonTest(self.polygon, (float(x), float(y)), False) >= 0


def anchors(detections: Detections, anchor: tuple[float, float] = BOTTOM_CENTRE) -> np.ndarray:
    """Anchor points (N,2): (0.5, 1.0) is the bottom centre, (0.5, 0.5) the centre."""
    xy = detections.xyxy
    ax, ay = anchor
    return np.stack([xy[:, 0] + (xy[:, 2] - xy[:, 0]) * ax, xy[:, 1] + (xy[:, 3] - xy[:, 1]) * ay], axis=1)


def _area(item) -> Area:
    if isinstance(item, Area):
        return item
    if isinstance(item, tuple) and len(item) == 2 and not np.isscalar(item[0]) and len(item[0]) and not np.isscalar(item[0][0]):
        return Area.make(item[0], item[1])  # (polygon, types)
    return Area.make(item)  # a bare polygon


def filter_zones(
    detections: Detections,
    issue_types: Sequence[str | None],
    zones: Sequence[Area | tuple[Polygon, Sequence[str]]],
    masks: Sequence[Area | Polygon],
    minute: int | None = None,
) -> Detections:
    """Drop detections inside an active mask for their type, or (when the camera has zones)
    outside every active zone for their type. `issue_types[i]` is detection i's issue type;
    `minute` the local minute of the day the frame was taken (for areas with hours)."""
    if len(detections) == 0 or (not zones and not masks):
        return detections
    zones = [_area(z) for z in zones]
    masks = [_area(m) for m in masks]
    keep = np.ones(len(detections), dtype=bool)
    for i, box in enumerate(detections.xyxy):
        kind = issue_types[i]
        if any(m.active(minute) and m.applies_to(kind) and m.contains(box) for m in masks):
            keep[i] = False
        elif zones and not any(z.active(minute) and z.applies_to(kind) and z.contains(box) for z in zones):
            keep[i] = False
    return detections[keep]
