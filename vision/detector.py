"""Detector backends behind one small interface (as Frigate does with its detector plugins).

A backend turns a BGR frame into `Detections` with every box above a low floor score;
per-class thresholds are applied later, so the tracker can still use weak boxes to keep
tracks alive through a bad frame.
"""

from __future__ import annotations

import logging
from typing import Callable, Protocol

import numpy as np

from vision.detections import Detections
from vision.manifest import ModelManifest

log = logging.getLogger("streetwatch.vision")

FLOOR_SCORE = 0.1


class Detector(Protocol):
    manifest: ModelManifest

    def detect(self, frame: np.ndarray) -> Detections: ...


BACKENDS: dict[str, Callable[[ModelManifest], Detector]] = {}


def backend(name: str):
    def register(factory):
        BACKENDS[name] = factory
        return factory

    return register


@backend("ultralytics")
class UltralyticsDetector:
    """Runs .pt (PyTorch) or .onnx weights through ultralytics' own predictor."""

    def __init__(self, manifest: ModelManifest):
        from ultralytics import YOLO

        self.manifest = manifest
        self.model = YOLO(str(manifest.weights_path), task=manifest.task)

    def detect(self, frame: np.ndarray) -> Detections:
        result = self.model.predict(frame, imgsz=self.manifest.imgsz, conf=FLOOR_SCORE, verbose=False)[0]
        boxes = result.boxes.cpu().numpy()
        return Detections(boxes.xyxy, boxes.conf, boxes.cls.astype(int))


def load_detector(manifest: ModelManifest, name: str = "ultralytics") -> Detector:
    if name not in BACKENDS:
        raise ValueError(f"unknown detector backend {name!r}; choose one of {sorted(BACKENDS)}")
    log.info("loading %s v%s (%s) with %s", manifest.name, manifest.version, manifest.weights_path.name, name)
    return BACKENDS[name](manifest)
