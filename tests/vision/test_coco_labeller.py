"""The official YOLOv5 COCO checkpoint run by our own anchor-head decode gives what the original
YOLOv5 code gave (shared/weights/yolov5n-coco/verification_detections.json, made with the
yolov5 repository's detect.py at v7.0)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS = ROOT.parent / "shared" / "weights" / "yolov5n-coco"


def test_detections_match_the_original_yolov5_code():
    from ultralytics.utils import ASSETS

    from vision.coco_labeller import CocoLabeller

    expected = json.loads((WEIGHTS / "verification_detections.json").read_text())
    labeller = CocoLabeller(WEIGHTS / "yolov5n.pt", imgsz=640, conf=0.25, iou=0.45)
    for image, spec in expected.items():
        got = sorted(labeller(cv2.imread(str(ASSETS / image))), key=lambda b: -b.score)
        want = sorted(spec["detections"], key=lambda d: -d["conf"])
        assert [b.name for b in got] == [d["class"] for d in want], image
        for b, d in zip(got, want):
            assert b.score == pytest.approx(d["conf"], abs=0.01)
            assert all(abs(g - w) <= 2 for g, w in zip(b.xyxy, d["xyxy"])), (image, b, d)


def test_letterbox_keeps_the_aspect_and_pads_to_the_stride():
    import numpy as np

    from vision.coco_labeller import letterbox

    padded, scale, (left, top) = letterbox(np.zeros((1080, 810, 3), np.uint8), 640)
    assert padded.shape[:2] == (640, 480) and scale == pytest.approx(640 / 1080) and (left, top) == (0, 0)
    padded, scale, (left, top) = letterbox(np.zeros((720, 1280, 3), np.uint8), 640)
    assert padded.shape[:2] == (384, 640) and top == 12 and left == 0  # 360 rows, 24 of grey split above and below
