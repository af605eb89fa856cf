"""Per-camera multi-object tracking with ultralytics' ByteTrack.

We analyse about one frame a second, not 25, so the tracker's frame-based settings are
derived from seconds: a track survives `lost_seconds` of misses before it is dropped.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from ultralytics.trackers.byte_tracker import BYTETracker

from vision.detections import Detections


class _BoxesView:
    """The slice of ultralytics' `Boxes` interface that BYTETracker reads."""

    def __init__(self, xyxy: np.ndarray, conf: np.ndarray, cls: np.ndarray):
        self.xyxy, self.conf, self.cls = xyxy, conf, cls
        wh = xyxy[:, 2:] - xyxy[:, :2]
        self.xywh = np.concatenate([xyxy[:, :2] + wh / 2, wh], axis=1)

    def __len__(self) -> int:
        return len(self.conf)

    def __getitem__(self, index) -> "_BoxesView":
        return _BoxesView(self.xyxy[index], self.conf[index], self.cls[index])


class IssueTracker:
    def __init__(self, sample_interval_s: float, lost_seconds: float = 30.0, high_thresh: float = 0.25,
                 low_thresh: float = 0.1, match_thresh: float = 0.8):
        args = SimpleNamespace(
            tracker_type="bytetrack",
            track_high_thresh=high_thresh,
            track_low_thresh=low_thresh,
            new_track_thresh=high_thresh,
            track_buffer=max(1, round(lost_seconds / max(sample_interval_s, 1e-3))),
            match_thresh=match_thresh,
            fuse_score=True,
        )
        self._tracker = BYTETracker(args)

    def update(self, detections: Detections) -> Detections:
        """Returns the tracked detections with `tracker_id` set (boxes as the detector gave them)."""
        view = _BoxesView(detections.xyxy.astype(np.float32), detections.confidence, detections.class_id.astype(np.float32))
        out = self._tracker.update(view)
        if len(out) == 0:
            return Detections.empty()
        idx = out[:, 7].astype(int)
        tracked = detections[idx]
        tracked.tracker_id = out[:, 4].astype(int)
        return tracked
