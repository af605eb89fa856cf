"""The edge's privacy blur: which cameras' images are blurred, and what is blurred in them
(what the face and plate cascades find, plus the heads of the people and the plates of the
vehicles the model itself saw).

Everything an edge box sends off the box goes through here first: the evidence of confirmed
events (streams/event_builder.py) and the verifier's photos of fixes (streams/edge_loops.py).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Callable

import numpy as np

from streams.config import CameraConfig, EdgeConfig
from vision.detections import Detections
from vision.manifest import ModelManifest

if TYPE_CHECKING:
    from vision.detector import Detector
    from vision.privacy import PrivacyFilter

log = logging.getLogger("streetwatch.edge")

Region = tuple[int, int, int, int]  # x, y, w, h


class EdgePrivacy:
    def __init__(self, config: EdgeConfig, manifest: Callable[[], ModelManifest]):
        self.config = config
        self._manifest = manifest  # the running model's, asked each time: it may be switched
        self._filter: PrivacyFilter | None = None
        self._lock = threading.Lock()  # the evidence and verifier threads may both ask first
        self._finder: tuple[tuple[str, str, int], Detector | None] | None = None  # (model, size) → detector

    def blurs(self, cam: CameraConfig) -> bool:
        """Whether `cam`'s images are blurred: its own setting, else the box's."""
        return cam.privacy_blur if cam.privacy_blur is not None else self.config.privacy_blur

    def filter(self) -> PrivacyFilter:
        # Made on first use: loading the cascades costs time a box without events never spends.
        with self._lock:
            if self._filter is None:
                from vision.privacy import PrivacyFilter

                self._filter = PrivacyFilter()
            return self._filter

    def regions(self, detections: Detections | None, image: np.ndarray | None = None) -> list[Region]:
        """Heads of the people and plates of the vehicles the model saw in the frame (a model
        with context classes), at any score a person could hide behind; with `image`, also those
        a second pass at `privacy_imgsz` finds in it."""
        found = self._from_detections(detections)
        if image is not None:
            found += self._from_detections(self._look_again(image))
        return found

    def _from_detections(self, detections: Detections | None) -> list[Region]:
        if detections is None or not len(detections):
            return []
        from vision.privacy import regions_from_detections

        manifest = self._manifest()
        names = [manifest.classes[int(c)].name if int(c) in manifest.classes else "" for c in detections.class_id]
        keep = detections.confidence >= 0.1
        return regions_from_detections(detections.xyxy[keep], [n for n, k in zip(names, keep) if k])

    def _look_again(self, image: np.ndarray) -> Detections | None:
        detector = self._finder_for(self._manifest())
        if detector is None:
            return None
        try:
            return detector.detect(image)
        except Exception as exc:  # the cascades and the analysis pass's boxes still blur
            log.warning("privacy: the %d px people pass failed (%s); blurring without it", self.config.privacy_imgsz, exc)
            return None

    def _finder_for(self, manifest: ModelManifest) -> Detector | None:
        """The running model at `privacy_imgsz`, loaded once per model (None: off, a model
        without people, or one that would not load at that size)."""
        size = self.config.privacy_imgsz
        if not size or size <= manifest.imgsz or not any(c.name == "person" for c in manifest.classes.values()):
            return None
        key = (manifest.name, manifest.version, size)
        with self._lock:
            if self._finder is None or self._finder[0] != key:
                from vision.detector import load_detector

                try:
                    detector = load_detector(manifest.model_copy(update={"imgsz": size}), self.config.detector, 1)
                except Exception as exc:
                    log.warning("privacy: cannot load %s at %d px (%s); blurring from the analysis pass only",
                                manifest.name, size, exc)
                    detector = None
                self._finder = (key, detector)
            return self._finder[1]

    def blur(self, image: np.ndarray, regions: list[Region]) -> np.ndarray:
        """A blurred copy of `image` (what the cascades find and `regions`); the original is
        left as it is."""
        return self.filter().blur(image, regions)[0]
