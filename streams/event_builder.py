"""A confirmed issue becomes the event the API receives: the event's fields and its evidence
JPEGs (full frame, annotated frame, crop), rendered from the privacy-blurred frame when the
camera blurs.

This is slow work (the blur costs ~0.5 s of CPU), run on the pipeline's evidence thread
(streams/edge_loops.py), never on the inference thread.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

import numpy as np

from api.schemas import CameraRef, EventIn, ModelRef
from streams.camera_analysis import CameraState
from streams.edge_privacy import EdgePrivacy
from streams.uplink import OutgoingEvent
from vision.confirm import ConfirmedIssue
from vision.detections import Detections
from vision.evidence import clip_box, render_evidence
from vision.manifest import ModelManifest

log = logging.getLogger("streetwatch.edge")


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def build_event(state: CameraState, image: np.ndarray, issue: ConfirmedIssue, detections: Detections | None,
                manifest: ModelManifest, privacy: EdgePrivacy) -> OutgoingEvent:
    """The event and evidence of `issue`, seen in `image` by the model `manifest` (the one that
    saw it, even if another runs by now)."""
    cam = state.config
    if privacy.blurs(cam):
        # Everything rendered below comes from the blurred copy; the original stays here.
        image = privacy.blur(image, privacy.regions(detections, image))
    h, w = image.shape[:2]
    class_name = manifest.classes[issue.class_id].name
    label = f"{issue.issue_type.value} {issue.confidence:.2f}"
    box = clip_box(issue.box, w, h)
    if box is None:  # confirmed on a frame of another size (an event recovered after a restart)
        log.warning("camera %s: event %s's box %s lies outside this %dx%d frame; the whole frame stands for it",
                    cam.name, issue.event_id, tuple(round(v) for v in issue.box), w, h)
        box = (0.0, 0.0, float(w), float(h))
    event = EventIn(
        event_id=issue.event_id,
        camera=CameraRef(name=cam.name, lat=cam.lat, lon=cam.lon, grid_id=cam.grid_id),
        issue_type=issue.issue_type,
        class_name=class_name,
        confidence=min(1.0, issue.confidence),
        bbox=box,
        frame_width=w,
        frame_height=h,
        first_seen=_utc(issue.first_seen),
        confirmed_at=_utc(issue.confirmed_at),
        track_id=issue.tracker_id,
        model=ModelRef(name=manifest.name, version=manifest.version),
    )
    log.info("camera %s: confirmed %s (track %d, %.2f) after %.0fs", cam.name, issue.issue_type.value,
             issue.tracker_id, issue.confidence, issue.confirmed_at - issue.first_seen)
    return OutgoingEvent(event, render_evidence(image, box, label, issue.issue_type.value))
