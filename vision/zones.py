"""Per-camera zones and masks: where an issue type counts, and where nothing does.

A detection is placed by its anchor point, the bottom centre of its box by default:
that is where a stall or a pile touches the ground.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from vision.detections import Detections

Polygon = Sequence[tuple[float, float]]


def _inside(polygon: Polygon, x: float, y: float) -> bool:
    return cv2.pointPolygonTest(np.asarray(polygon, dtype=np.float32).reshape(-1, 1, 2), (float(x), float(y)), False) >= 0


def anchors(detections: Detections, anchor: tuple[float, float] = (0.5, 1.0)) -> np.ndarray:
    """Anchor points (N,2): (0.5, 1.0) is the bottom centre, (0.5, 0.5) the centre."""
    xy = detections.xyxy
    ax, ay = anchor
    return np.stack([xy[:, 0] + (xy[:, 2] - xy[:, 0]) * ax, xy[:, 1] + (xy[:, 3] - xy[:, 1]) * ay], axis=1)


def filter_zones(
    detections: Detections,
    issue_types: Sequence[str | None],
    zones: Sequence[tuple[Polygon, Sequence[str]]],
    masks: Sequence[Polygon],
    anchor: tuple[float, float] = (0.5, 1.0),
) -> Detections:
    """Drop detections inside a mask, or (when zones exist) outside every zone for their type.

    `issue_types[i]` is the issue type of detection i; `zones` are (polygon, types) with
    an empty types list meaning every type.
    """
    if len(detections) == 0 or (not zones and not masks):
        return detections
    keep = np.ones(len(detections), dtype=bool)
    for i, (x, y) in enumerate(anchors(detections, anchor)):
        if any(_inside(m, x, y) for m in masks):
            keep[i] = False
        elif zones and not any(_inside(p, x, y) and (not types or issue_types[i] in types) for p, types in zones):
            keep[i] = False
    return detections[keep]
