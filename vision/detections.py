"""Detections as one plain dataclass of arrays, passed between pipeline stages (as in supervision)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Detections:
    xyxy: np.ndarray  # (N, 4) float32 pixel boxes
    confidence: np.ndarray  # (N,) float32
    class_id: np.ndarray  # (N,) int
    tracker_id: np.ndarray = field(default=None)  # (N,) int, -1 where untracked

    def __post_init__(self) -> None:
        self.xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
        self.confidence = np.asarray(self.confidence, dtype=np.float32).reshape(-1)
        self.class_id = np.asarray(self.class_id, dtype=int).reshape(-1)
        if self.tracker_id is None:
            self.tracker_id = np.full(len(self.xyxy), -1, dtype=int)
        self.tracker_id = np.asarray(self.tracker_id, dtype=int).reshape(-1)
        n = len(self.xyxy)
        if not (len(self.confidence) == len(self.class_id) == len(self.tracker_id) == n):
            raise ValueError("Detections arrays must have the same length")

    @classmethod
    def empty(cls) -> "Detections":
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=int))

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index) -> "Detections":
        return Detections(self.xyxy[index], self.confidence[index], self.class_id[index], self.tracker_id[index])


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix between boxes a (N,4) and b (M,4)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    tl = np.maximum(a[:, None, :2], b[None, :, :2])
    br = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(br - tl, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def box_containment(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over the smaller box's area, for one pair of boxes (1.0: one inside the other)."""
    a, b = np.asarray(a, dtype=np.float64).reshape(4), np.asarray(b, dtype=np.float64).reshape(4)
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return w * h / smaller if smaller > 0 else 0.0
