"""The edge's privacy blur: which cameras' images are blurred, and what is blurred in them
(what the face and plate cascades find, plus the heads of the people and the plates of the
vehicles the model itself saw).

Everything an edge box sends off the box goes through here first: the evidence of confirmed
events (streams/event_builder.py) and the verifier's photos of fixes (streams/edge_loops.py).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Callable

import numpy as np

from streams.config import CameraConfig, EdgeConfig
from vision.detections import Detections
from vision.manifest import ModelManifest

if TYPE_CHECKING:
    from vision.privacy import PrivacyFilter

Region = tuple[int, int, int, int]  # x, y, w, h


class EdgePrivacy:
    def __init__(self, config: EdgeConfig, manifest: Callable[[], ModelManifest]):
        self.config = config
        self._manifest = manifest  # the running model's, asked each time: it may be switched
        self._filter: PrivacyFilter | None = None
        self._lock = threading.Lock()  # the evidence and verifier threads may both ask first

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

    def regions(self, detections: Detections | None) -> list[Region]:
        """Heads of the people and plates of the vehicles the model saw in the frame (a model
        with context classes), at any score a person could hide behind."""
        if detections is None or not len(detections):
            return []
        from vision.privacy import regions_from_detections

        manifest = self._manifest()
        names = [manifest.classes[int(c)].name if int(c) in manifest.classes else "" for c in detections.class_id]
        keep = detections.confidence >= 0.1
        return regions_from_detections(detections.xyxy[keep], [n for n, k in zip(names, keep) if k])

    def blur(self, image: np.ndarray, regions: list[Region]) -> np.ndarray:
        """A blurred copy of `image` (what the cascades find and `regions`); the original is
        left as it is."""
        return self.filter().blur(image, regions)[0]
