"""What the edge keeps per camera, and how one analysed frame goes through it: zones and
masks, the tracker (or none, for sparse samples), hysteresis and confirmation.

The pipeline (streams/pipeline.py) owns one CameraState per running camera; the functions here
take the model's current answers as callables, because the model may be switched while the
cameras run (EdgePipeline.switch_model) and a state must never hold on to the old one.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Callable

from api.schemas import IssueType
from streams.config import CameraConfig, EdgeConfig
from streams.sampling import camera_interval, is_sparse
from vision.confirm import ConfirmedIssue, ConfirmRule, EventConfirmer
from vision.detections import Detections
from vision.tracker import IssueTracker
from vision.zones import Area, filter_zones

log = logging.getLogger("streetwatch.edge")

IssueTypeOf = Callable[[int], IssueType | None]
ThresholdOf = Callable[[int], float]


@dataclass
class CameraState:
    config: CameraConfig
    tracker: IssueTracker | None  # None: sparse samples, confirmed by region (vision/sparse_confirm.py)
    confirmer: EventConfirmer  # or a SparseConfirmer, which has the same face
    zones: list[Area]
    masks: list[Area]
    frames_analysed: int = 0
    events: int = 0
    analysed_at: deque = field(default_factory=lambda: deque(maxlen=120))  # monotonic, for intervals
    latencies: deque = field(default_factory=lambda: deque(maxlen=120))  # capture → detections, seconds
    frame_size: tuple[int, int] | None = None  # (w, h) of the last analysed frame


def new_camera_state(config: EdgeConfig, cam: CameraConfig, class_ids: list[int], issue_type_of: IssueTypeOf,
                     threshold_of: ThresholdOf) -> CameraState:
    """A fresh state for `cam`: its zones and masks, and either a tracker and confirmer (frames
    close enough together to follow objects) or a region confirmer for sparse samples."""
    interval = camera_interval(config, cam)
    rules = {t: ConfirmRule(s.confirm_seconds, s.min_hits, s.clear_seconds, s.score_window,
                            s.sample_window or max(5, s.min_hits))
             for t, s in config.issues.items()}
    zones = [Area.make(z.polygon, [t.value for t in z.issue_types], z.anchor, z.hours) for z in cam.zones.values()]
    masks = [Area.make(m.polygon, [t.value for t in m.issue_types], m.anchor, m.hours) for m in cam.masks]
    if is_sparse(config, cam):  # snapshots, or 10 s and more between frames: regions, no tracks
        from vision.sparse_confirm import SparseConfirmer

        return CameraState(cam, None, SparseConfirmer(issue_type_of, threshold_of, rules), zones, masks)
    confirmer = EventConfirmer(issue_type_of, threshold_of, rules)
    # Tracks must be able to start at the lowest class threshold, or a class with a low
    # threshold would never get a track to confirm.
    lowest = min(threshold_of(c) for c in class_ids)
    tracker = IssueTracker(interval, lost_seconds=30.0, high_thresh=min(0.25, lowest), low_thresh=min(0.1, lowest / 2))
    return CameraState(cam, tracker, confirmer, zones, masks)


def minute_of_day(captured_at: float, tz: tzinfo | None) -> int:
    """The local minute of the day a frame was taken at (zones' `hours`), in the config's
    timezone or else the machine's."""
    local = datetime.fromtimestamp(captured_at, tz=tz) if tz else datetime.fromtimestamp(captured_at)
    return local.hour * 60 + local.minute


def analyse_frame(state: CameraState, detections: Detections, captured_at: float,
                  frame_size: tuple[int, int] | None, issue_type_of: IssueTypeOf,
                  tz: tzinfo | None) -> list[ConfirmedIssue]:
    """Zones and masks, tracking, hysteresis and confirmation for one analysed frame of the
    camera (`frame_size`, (w, h), lets a change of the camera's resolution be followed)."""
    camera = state.config.name
    if frame_size is not None:
        if state.frame_size is not None and frame_size != state.frame_size:
            log.info("camera %s: frames are now %dx%d (were %dx%d)", camera, *frame_size, *state.frame_size)
            state.confirmer.rescale(frame_size[0] / state.frame_size[0], frame_size[1] / state.frame_size[1])
        state.frame_size = frame_size
    if state.zones or state.masks:
        kinds = [t.value if (t := issue_type_of(c)) else None for c in detections.class_id]
        detections = filter_zones(detections, kinds, state.zones, state.masks, minute_of_day(captured_at, tz))
    tracked = state.tracker.update(detections) if state.tracker is not None else detections
    state.frames_analysed += 1
    issues = state.confirmer.update(tracked, captured_at)
    state.events += len(issues)
    return issues
