"""EdgePipeline.analyse over a camera's life: the same stall across a change of resolution is
one event (tracking, zones and confirmation are tested in tests/vision)."""

from __future__ import annotations

import numpy as np

from streams.config import EdgeConfig
from streams.pipeline import EdgePipeline
from tests.streams.test_edge_faults import NoDetections
from vision.detections import Detections


def stall(box: tuple[float, float, float, float]) -> Detections:
    return Detections(np.array([box], float), np.array([0.9]), np.array([0]))  # class 0: vending


def test_one_stall_across_a_resolution_change_is_one_event():
    config = EdgeConfig.model_validate({"http": None, "issues": {"street_vending": {"confirm_seconds": 3}},
                                        "cameras": [{"name": "gate", "url": "rtsp://127.0.0.1/a"}]})
    edge = EdgePipeline(config, detector=NoDetections(), uploader=object())
    events = []
    for t in range(8):
        events += edge.analyse("gate", stall((1152, 648, 1536, 972)), 1000.0 + t, (1920, 1080))
    assert len(events) == 1
    for t in range(8, 30):  # the camera was switched to 720p: the same stall, in the new pixels
        events += edge.analyse("gate", stall((768, 432, 1024, 648)), 1000.0 + t, (1280, 720))
    assert len(events) == 1
    assert edge.cameras["gate"].frame_size == (1280, 720)
