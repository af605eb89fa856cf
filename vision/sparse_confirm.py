"""Confirmation from sparse samples: one picture every 30 s or more, where no tracker can
follow anything (a hawker walks 15 m between two frames), so regions are remembered instead
of tracks.

Each detection over its class threshold is matched to the remembered region of its issue type
in the same place (overlap, or one box inside the other: vision/confirm.py's same_place) or
starts a new one. Every analysed frame is one sample for every region: a hit or a miss.

* **Confirmed** when the region was hit in `min_hits` of its last `sample_window` samples,
  the current sample is a hit, and its first hit is at least `confirm_seconds` ago. Reported
  once; a re-detection in the same place joins the reported region, not a new event.
* **Given up** (not yet reported) once a full window of samples holds fewer than `min_hits`
  hits: a one-off false detection does not linger to help a later one confirm.
* **Cleared** (reported) once unseen for `clear_seconds` and missed in
  `sample_window - min_hits + 1` samples in a row (so it could not pass the N-of-M test any
  more); it returning after that is a new event. One missed detection never clears a stall.

What it cannot see: an issue present in fewer than `min_hits` samples. At 30 s sampling and
3 hits, that is anything that stays under about a minute (a stall that stays 20 s may be
missed altogether).
"""

from __future__ import annotations

import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from api.schemas import IssueType
from vision.confirm import ConfirmedIssue, ConfirmRule, same_place
from vision.detections import Detections, box_iou


@dataclass
class _Region:
    id: int
    issue_type: IssueType
    class_id: int
    box: np.ndarray
    samples: deque  # True (hit) / False (miss), the last sample_window of them
    first_hit: float
    last_hit: float
    confidence: float
    misses_in_a_row: int = 0
    reported: bool = False


@dataclass
class SparseConfirmer:
    issue_type_of: Callable[[int], IssueType | None]
    threshold_of: Callable[[int], float]
    rules: dict[IssueType, ConfirmRule]
    region_iou: float = 0.3
    _regions: list[_Region] = field(default_factory=list)
    _next_id: int = 1
    _last_now: float | None = None

    def rule(self, issue_type: IssueType) -> ConfirmRule:
        return self.rules.get(issue_type, ConfirmRule())

    def _window(self, issue_type: IssueType) -> int:
        rule = self.rule(issue_type)
        return max(rule.sample_window, rule.min_hits)

    def update(self, detections: Detections, now: float) -> list[ConfirmedIssue]:
        """One analysed frame's detections (tracker ids are not needed); the issues confirmed now."""
        if self._last_now is not None and now < self._last_now:
            self._shift(now - self._last_now)  # NTP stepped the clock back (see EventConfirmer)
        self._last_now = now
        hit: dict[int, tuple[np.ndarray, float, int]] = {}  # region id → (box, score, class) seen now
        for i in range(len(detections)):
            cls, conf = int(detections.class_id[i]), float(detections.confidence[i])
            issue = self.issue_type_of(cls)
            if issue is None or not conf >= self.threshold_of(cls):  # (a NaN score counts as below)
                continue
            box = np.asarray(detections.xyxy[i], dtype=float)
            region = self._match(issue, box)
            if region is None:
                window = self._window(issue)
                region = _Region(self._next_id, issue, cls, box, deque(maxlen=window), now, now, conf)
                self._next_id += 1
                self._regions.append(region)
            if region.id not in hit or conf > hit[region.id][1]:
                hit[region.id] = (box, conf, cls)
        confirmed = []
        for region in self._regions:
            seen = hit.get(region.id)
            region.samples.append(seen is not None)
            if seen is None:
                region.misses_in_a_row += 1
                continue
            region.box, conf, region.class_id = seen
            region.last_hit, region.misses_in_a_row = now, 0
            region.confidence = max(region.confidence, conf)
            issue = self._maybe_confirm(region, now)
            if issue is not None:
                confirmed.append(issue)
        self._forget(now)
        return confirmed

    def _match(self, issue: IssueType, box: np.ndarray) -> _Region | None:
        same = [r for r in self._regions if r.issue_type == issue and same_place(box, r.box, self.region_iou)]
        if not same:
            return None
        return max(same, key=lambda r: float(box_iou(box, r.box)[0, 0]))

    def _maybe_confirm(self, region: _Region, now: float) -> ConfirmedIssue | None:
        rule = self.rule(region.issue_type)
        hits = sum(region.samples)
        if region.reported or hits < rule.min_hits or now - region.first_hit < rule.confirm_seconds:
            return None
        region.reported = True
        x1, y1, x2, y2 = (float(v) for v in region.box)
        return ConfirmedIssue(uuid.uuid4(), region.issue_type, region.class_id, region.id, (x1, y1, x2, y2),
                              region.confidence, region.first_hit, now)

    def _forget(self, now: float) -> None:
        kept = []
        for region in self._regions:
            rule, window = self.rule(region.issue_type), self._window(region.issue_type)
            if region.reported:
                gone = (now - region.last_hit > rule.clear_seconds
                        and region.misses_in_a_row >= window - rule.min_hits + 1)
            else:
                gone = len(region.samples) == window and sum(region.samples) < rule.min_hits
            if not gone:
                kept.append(region)
        self._regions = kept

    def rescale(self, sx: float, sy: float) -> None:
        """The camera's frames changed size: remembered boxes move into the new frame's pixels."""
        factor = np.array([sx, sy, sx, sy])
        for region in self._regions:
            region.box = region.box * factor

    def _shift(self, delta: float) -> None:
        for region in self._regions:
            region.first_hit += delta
            region.last_hit += delta

    @property
    def regions(self) -> int:
        return len(self._regions)
