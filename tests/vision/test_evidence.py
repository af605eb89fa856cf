"""Evidence rendering at the edges: boxes off or over the frame still give three images."""

from __future__ import annotations

import time
import uuid

import cv2
import numpy as np

from api.schemas import IssueType
from vision.confirm import ConfirmedIssue
from vision.evidence import annotate, clip_box, crop, render_evidence


def test_clip_box_keeps_the_part_inside_and_says_when_there_is_none():
    assert clip_box((-10, 5, 50, 500), 100, 80) == (0.0, 5, 50, 80.0)
    assert clip_box((120, 10, 200, 40), 100, 80) is None  # right of the frame
    assert clip_box((10, 10, 10, 40), 100, 80) is None  # no width


def test_crop_is_never_empty():
    frame = np.zeros((80, 100, 3), np.uint8)
    for box in [(120, 90, 200, 150), (-50, -50, -10, -10), (0, 0, 100, 80), (99.5, 79.5, 100, 80)]:
        part = crop(frame, box)
        assert part.size > 0, box


def test_evidence_for_a_box_larger_than_the_frame_decodes():
    frame = np.full((90, 160, 3), 120, np.uint8)
    images = render_evidence(frame, (-20, -20, 400, 300), "flooding 0.90", "flooding")
    for name, data in images.items():
        assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) is not None, name


def test_an_event_whose_box_is_off_this_frame_is_sent_with_the_whole_frame():
    """An event recovered after a restart is drawn on the camera's next frame; at another
    resolution its box can lie off it, which once lost the event (EventIn refused x1 > x2)."""
    from streams.config import EdgeConfig
    from streams.pipeline import EdgePipeline
    from tests.streams.test_edge_faults import NoDetections

    config = EdgeConfig.model_validate({"http": None, "privacy_blur": False,
                                        "cameras": [{"name": "gate", "url": "rtsp://127.0.0.1/a"}]})
    edge = EdgePipeline(config, detector=NoDetections(), uploader=object())
    now = time.time()
    issue = ConfirmedIssue(uuid.uuid4(), IssueType.clutter, 0, 1, (1536.0, 756.0, 1824.0, 1026.0), 0.8, now - 10, now)
    event = edge._make_event(edge.cameras["gate"], np.zeros((720, 1280, 3), np.uint8), issue)
    assert event.event.bbox == (0.0, 0.0, 1280.0, 720.0) and set(event.images) == {"frame", "annotated", "crop"}


def test_the_label_is_drawn_for_a_box_as_tall_as_the_frame_and_at_the_right_edge():
    frame = np.full((360, 640, 3), 90, np.uint8)
    white = lambda img: int((img > 200).all(axis=2).sum())  # noqa: E731 (the label's text, anti-aliased)
    normal = white(annotate(frame, (100, 100, 300, 200), "flooding 0.90", "flooding"))
    assert normal > 50
    assert white(annotate(frame, (0, 0, 640, 360), "flooding 0.90", "flooding")) >= 0.9 * normal
    assert white(annotate(frame, (600, 100, 640, 200), "flooding 0.90", "flooding")) >= 0.9 * normal
