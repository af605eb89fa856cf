"""The edge's privacy regions: with a model that knows people, a second pass at privacy_imgsz
over what is sent finds the small people the 320 px analysis pass missed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import vision.detector
from streams.config import EdgeConfig
from streams.edge_privacy import EdgePrivacy
from vision.detections import Detections
from vision.manifest import load_manifest

ROOT = Path(__file__).resolve().parents[2]
PEOPLE_MODEL = load_manifest(ROOT / "models" / "streetwatch-v4", weights_required=False)  # has a person class
NO_PEOPLE = load_manifest(ROOT / "models" / "streetwatch-demo", weights_required=False)
PERSON = next(i for i, c in PEOPLE_MODEL.classes.items() if c.name == "person")


def config(**extra) -> EdgeConfig:
    return EdgeConfig.model_validate({"http": None, "cameras": [{"name": "c1", "url": "rtsp://127.0.0.1:1/x"}], **extra})


class _Finder:
    def __init__(self, box):
        self.box, self.calls = box, 0

    def detect(self, frame):
        self.calls += 1
        return Detections(xyxy=[self.box], confidence=[0.6], class_id=[PERSON])


@pytest.fixture
def loads(monkeypatch):
    loaded = []

    def load(manifest, name="ultralytics", threads=None):
        loaded.append((manifest.imgsz, name, threads))
        return _Finder((100, 40, 120, 100))  # a small, far person

    monkeypatch.setattr(vision.detector, "load_detector", load)
    return loaded


def test_a_people_model_looks_again_at_privacy_imgsz_and_blurs_those_heads(loads):
    privacy = EdgePrivacy(config(), lambda: PEOPLE_MODEL)
    image = np.zeros((360, 640, 3), np.uint8)
    near = Detections(xyxy=[(300, 100, 360, 300)], confidence=[0.8], class_id=[PERSON])
    assert len(privacy.regions(near)) == 1  # no image: the analysis pass's boxes only, no second model
    assert loads == []
    regions = privacy.regions(near, image)
    assert len(regions) == 2 and loads == [(640, "onnxruntime", 1)]
    x, y, w, h = regions[1]
    assert 100 <= x and x + w <= 120 and 40 <= y < 60  # the far person's head: the top of its box
    privacy.regions(None, image)
    assert len(loads) == 1  # loaded once per model and size


@pytest.mark.parametrize("manifest, size", [(NO_PEOPLE, 640), (PEOPLE_MODEL, 0), (PEOPLE_MODEL, 320)])
def test_no_second_pass_without_people_when_off_or_not_larger(loads, manifest, size):
    privacy = EdgePrivacy(config(privacy_imgsz=size), lambda: manifest)
    assert privacy.regions(None, np.zeros((360, 640, 3), np.uint8)) == [] and loads == []


def test_a_pass_that_will_not_load_leaves_the_analysis_boxes(monkeypatch, caplog):
    def broken(*_a, **_k):
        raise RuntimeError("no onnx export")

    monkeypatch.setattr(vision.detector, "load_detector", broken)
    privacy = EdgePrivacy(config(), lambda: PEOPLE_MODEL)
    near = Detections(xyxy=[(300, 100, 360, 300)], confidence=[0.8], class_id=[PERSON])
    assert len(privacy.regions(near, np.zeros((360, 640, 3), np.uint8))) == 1
    assert "cannot load streetwatch-v4 at 640 px" in caplog.text
