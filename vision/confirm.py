"""Event confirmation: a tracked issue becomes one event after it has persisted long enough.

Street issues are slow: a stall stays for an hour. A track must be seen for its issue
type's confirmation time (and a minimum number of analysed frames) before it is
reported, and once reported its region is remembered, so a track that the tracker loses
and re-creates over the same spot does not report the same issue again.

Score hysteresis (the lesson of Frigate's false-positive reports): a frame counts for a track
only when the median of the track's last `score_window` scores is over the class threshold,
so a single high-scoring frame among weak ones never starts or confirms an issue.
"""

from __future__ import annotations

import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from api.schemas import IssueType
from vision.detections import Detections, box_containment, box_iou


def same_place(a: np.ndarray, b: np.ndarray, min_iou: float = 0.3) -> bool:
    """Overlap, or one box mostly inside the other: water and piles are often detected as a
    whole one frame and as fragments the next."""
    return float(box_iou(a, b)[0, 0]) >= min_iou or float(box_containment(a, b)) >= 0.6


@dataclass(frozen=True)
class ConfirmRule:
    confirm_seconds: float = 10.0  # how long an issue must persist before it is reported
    min_hits: int = 3  # analysed frames with the issue above threshold
    clear_seconds: float = 120.0  # unseen this long: forgotten, a return is a new event
    score_window: int = 5  # the median of this many recent scores must pass the threshold
    # Sparse samples (vision/sparse_confirm.py): the region in min_hits of the last sample_window.
    sample_window: int = 5


@dataclass
class _Track:
    class_id: int
    issue_type: IssueType
    scores: deque  # the last score_window scores, counted or not
    observed: float  # last frame the tracker had it, whatever its score
    first_seen: float | None = None  # first counted frame
    last_seen: float | None = None  # last counted frame
    hits: int = 0
    box: np.ndarray | None = None
    confidence: float = 0.0
    reported: bool = False


@dataclass
class _Region:
    issue_type: IssueType
    box: np.ndarray
    last_seen: float


@dataclass
class ConfirmedIssue:
    event_id: uuid.UUID
    issue_type: IssueType
    class_id: int
    tracker_id: int
    box: tuple[float, float, float, float]
    confidence: float
    first_seen: float  # unix seconds
    confirmed_at: float

    def to_json(self) -> str:
        import json

        return json.dumps({"event_id": str(self.event_id), "issue_type": self.issue_type.value,
                           "class_id": self.class_id, "tracker_id": self.tracker_id, "box": list(self.box),
                           "confidence": self.confidence, "first_seen": self.first_seen,
                           "confirmed_at": self.confirmed_at})

    @classmethod
    def from_json(cls, text: str) -> "ConfirmedIssue":
        import json

        d = json.loads(text)
        return cls(uuid.UUID(d["event_id"]), IssueType(d["issue_type"]), int(d["class_id"]), int(d["tracker_id"]),
                   tuple(float(v) for v in d["box"]), float(d["confidence"]), float(d["first_seen"]),
                   float(d["confirmed_at"]))


@dataclass
class EventConfirmer:
    issue_type_of: Callable[[int], IssueType | None]
    threshold_of: Callable[[int], float]
    rules: dict[IssueType, ConfirmRule]
    region_iou: float = 0.3
    _tracks: dict[int, _Track] = field(default_factory=dict)
    _regions: list[_Region] = field(default_factory=list)
    _last_now: float | None = None

    def rule(self, issue_type: IssueType) -> ConfirmRule:
        return self.rules.get(issue_type, ConfirmRule())

    def update(self, detections: Detections, now: float) -> list[ConfirmedIssue]:
        """Feed one analysed frame's tracked detections; returns the issues confirmed now."""
        if self._last_now is not None and now < self._last_now:
            # Frame times are wall-clock: when NTP steps the clock back, every remembered time
            # moves with it, or confirmation would wait out the whole step (an hour, once).
            self._shift(now - self._last_now)
        self._last_now = now
        for det in (detections[i] for i in range(len(detections))):
            tid, cls, conf = int(det.tracker_id[0]), int(det.class_id[0]), float(det.confidence[0])
            issue = self.issue_type_of(cls)
            if tid < 0 or issue is None:
                continue
            track = self._tracks.get(tid)
            if track is None or track.issue_type != issue:
                track = self._tracks[tid] = _Track(cls, issue, deque(maxlen=self.rule(issue).score_window), now)
            track.observed = now
            track.scores.append(conf)
            if not float(np.median(track.scores)) >= self.threshold_of(cls):  # (a NaN score counts as below)
                continue
            box = det.xyxy[0].astype(float)
            if track.first_seen is None:
                track.first_seen = now
            track.last_seen, track.hits, track.box = now, track.hits + 1, box
            track.confidence = max(track.confidence, conf)
            self._touch_regions(issue, box, now)
        self._forget(now)
        return [c for tid, t in list(self._tracks.items()) if (c := self._maybe_confirm(tid, t, now))]

    def rescale(self, sx: float, sy: float) -> None:
        """The camera's frames changed size: remembered boxes move into the new frame's pixels,
        so an issue reported before the change is still recognised after it."""
        factor = np.array([sx, sy, sx, sy])
        for track in self._tracks.values():
            if track.box is not None:
                track.box = track.box * factor
        for region in self._regions:
            region.box = region.box * factor

    def _shift(self, delta: float) -> None:
        for track in self._tracks.values():
            track.observed += delta
            track.first_seen = None if track.first_seen is None else track.first_seen + delta
            track.last_seen = None if track.last_seen is None else track.last_seen + delta
        for region in self._regions:
            region.last_seen += delta

    def _maybe_confirm(self, tid: int, track: _Track, now: float) -> ConfirmedIssue | None:
        rule = self.rule(track.issue_type)
        if track.reported or track.last_seen != now or track.first_seen is None:
            return None
        if now - track.first_seen < rule.confirm_seconds or track.hits < rule.min_hits:
            return None
        track.reported = True
        if self._covered(track.issue_type, track.box):
            return None  # the same issue, already reported under an earlier track
        self._regions.append(_Region(track.issue_type, track.box.copy(), now))
        x1, y1, x2, y2 = (float(v) for v in track.box)
        return ConfirmedIssue(uuid.uuid4(), track.issue_type, track.class_id, tid, (x1, y1, x2, y2),
                              track.confidence, track.first_seen, now)

    def _same_place(self, a: np.ndarray, b: np.ndarray) -> bool:
        return same_place(a, b, self.region_iou)

    def _covered(self, issue: IssueType, box: np.ndarray) -> bool:
        return any(r.issue_type == issue and self._same_place(box, r.box) for r in self._regions)

    def _touch_regions(self, issue: IssueType, box: np.ndarray, now: float) -> None:
        for region in self._regions:
            if region.issue_type == issue and self._same_place(box, region.box):
                region.last_seen = now

    def _forget(self, now: float) -> None:
        self._tracks = {t: s for t, s in self._tracks.items() if now - s.observed <= self.rule(s.issue_type).clear_seconds}
        self._regions = [r for r in self._regions if now - r.last_seen <= self.rule(r.issue_type).clear_seconds]
