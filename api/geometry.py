"""Box arithmetic for dedup (kept here: api/ must not import the vision package)."""

from __future__ import annotations

from typing import Iterable, TypeVar

Box = tuple[float, float, float, float]
T = TypeVar("T")


def scale_box(box: Box, src: tuple[int, int], dst: tuple[int, int]) -> Box:
    """`box` from a frame of size `src` (w, h) in the pixels of one of size `dst`: a camera
    whose stream changed resolution sees the same thing at the same place of the picture."""
    if src == dst:
        return box
    sx, sy = dst[0] / src[0], dst[1] / src[1]
    return (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy)


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two x1, y1, x2, y2 boxes; 0 for degenerate boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1]) + max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def best_match(box: Box, candidates: Iterable[tuple[T, Box]], threshold: float) -> T | None:
    """The candidate whose box overlaps `box` most, if that overlap reaches `threshold`.

    Ties go to the first candidate, so callers pass the oldest order first and a sighting
    between two equal orders always lands on the same one."""
    best, best_iou = None, 0.0
    for item, other in candidates:
        score = iou(box, other)
        if score > best_iou:
            best, best_iou = item, score
    return best if best is not None and best_iou >= threshold else None
