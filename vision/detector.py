"""Detector backends behind one small interface (as Frigate does with its detector plugins).

A backend turns a BGR frame into `Detections` with every box above a low floor score;
per-class thresholds are applied later, so the tracker can still use weak boxes to keep
tracks alive through a bad frame.
"""

from __future__ import annotations

import logging
from typing import Callable, Protocol, Sequence

import numpy as np

from vision.detections import Detections
from vision.manifest import ModelManifest

log = logging.getLogger("streetwatch.vision")

FLOOR_SCORE = 0.1


class Detector(Protocol):
    manifest: ModelManifest

    def detect(self, frame: np.ndarray) -> Detections: ...

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        """One Detections per frame, in order; frames may differ in size."""
        ...


# name → factory(manifest, threads); threads None lets the backend choose.
BACKENDS: dict[str, Callable[[ModelManifest, int | None], Detector]] = {}


def backend(name: str):
    def register(factory):
        BACKENDS[name] = factory
        return factory

    return register


@backend("ultralytics")
class UltralyticsDetector:
    """Runs .pt (PyTorch) or .onnx weights through ultralytics' own predictor."""

    def __init__(self, manifest: ModelManifest, threads: int | None = None):
        from ultralytics import YOLO

        if threads:
            import torch

            torch.set_num_threads(threads)
        self.manifest = manifest
        self.model = YOLO(str(manifest.weights_path), task=manifest.task)

    def detect(self, frame: np.ndarray) -> Detections:
        return self.detect_batch([frame])[0]

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        if not len(frames):
            return []
        results = self.model.predict(list(frames), imgsz=self.manifest.imgsz, conf=FLOOR_SCORE, verbose=False)
        out = []
        for result in results:
            boxes = result.boxes.cpu().numpy()
            out.append(Detections(boxes.xyxy, boxes.conf, boxes.cls.astype(int)))
        return out


@backend("onnxruntime")
def _onnxruntime(manifest: ModelManifest, threads: int | None = None) -> Detector:
    from vision.runtimes import OnnxRuntimeDetector  # onnxruntime is imported only when chosen

    return OnnxRuntimeDetector(manifest, FLOOR_SCORE, threads)


@backend("openvino")
def _openvino(manifest: ModelManifest, threads: int | None = None) -> Detector:
    from vision.runtimes import OpenVinoDetector

    return OpenVinoDetector(manifest, FLOOR_SCORE, threads)


def load_detector(manifest: ModelManifest, name: str = "ultralytics", threads: int | None = None) -> Detector:
    if name not in BACKENDS:
        raise ValueError(f"unknown detector backend {name!r}; choose one of {sorted(BACKENDS)}")
    log.info("loading %s v%s with %s", manifest.name, manifest.version, name)
    return BACKENDS[name](manifest, threads)
