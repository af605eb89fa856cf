"""Blur faces and licence plates before an image leaves the box.

OpenCV 4.x wheels ship Haar cascades (cv2.data.haarcascades) for frontal and profile faces
and for plates; nothing is downloaded (OpenCV 5 wheels dropped them: opencv-python<5 is
pinned). Haar cascades are cheap and miss some faces, so every hit is blurred with a margin
and the detector runs on a frame upscaled when small: a false blur costs nothing, a miss
leaks a face. The pipeline blurs the frame before any evidence is rendered from it; the
unblurred frame never leaves memory.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger("streetwatch.privacy")

CASCADES = {
    "face": ("haarcascade_frontalface_default.xml", "haarcascade_profileface.xml"),
    "plate": ("haarcascade_russian_plate_number.xml",),
}


# Where a detector that sees people and vehicles (the context classes of streetwatch-v3) says
# a face or a plate must be: the cascades miss small, turned and night faces, which is what
# street cameras see, while the detector finds the person. Fractions of the box.
HEAD_OF_PERSON = (0.0, 0.0, 1.0, 0.25)        # x1, y1, x2, y2: the top quarter, whole width
PLATE_OF_VEHICLE = (0.0, 0.55, 1.0, 1.0)      # the lower 45 %, front and rear plates alike
VEHICLES = frozenset({"car", "bus", "truck", "motorcycle"})


def regions_from_detections(xyxy, names: list[str]) -> list[tuple[int, int, int, int]]:
    """(x, y, w, h) regions to blur: the head part of every person box and the plate band of
    every vehicle box; other classes give none."""
    out = []
    for (x1, y1, x2, y2), name in zip(xyxy, names):
        part = HEAD_OF_PERSON if name == "person" else PLATE_OF_VEHICLE if name in VEHICLES else None
        if part is None:
            continue
        w, h = x2 - x1, y2 - y1
        ax, ay = x1 + part[0] * w, y1 + part[1] * h
        bx, by = x1 + part[2] * w, y1 + part[3] * h
        if bx - ax >= 1 and by - ay >= 1:
            out.append((int(ax), int(ay), int(round(bx - ax)), int(round(by - ay))))
    return out


class PrivacyError(RuntimeError):
    """The cascades could not be loaded: evidence must not be sent unblurred."""


def _load(name: str) -> cv2.CascadeClassifier:
    path = Path(cv2.data.haarcascades) / name
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise PrivacyError(f"cannot load {path} (opencv-python 4.x ships it; 5.x does not)")
    return cascade


class PrivacyFilter:
    """`blur(frame)` → a blurred copy and the boxes blurred. Thread-safe (one lock: cascades
    are not re-entrant, and events are rare enough that contention does not matter)."""

    def __init__(self, min_face_px: int = 16, margin: float = 0.2):
        self.min_face_px, self.margin = min_face_px, margin
        self._cascades = {kind: [_load(n) for n in names] for kind, names in CASCADES.items()}
        self._lock = threading.Lock()

    def find(self, frame: np.ndarray) -> list[tuple[int, int, int, int]]:
        """Boxes (x, y, w, h) of faces and plates in a BGR frame."""
        gray = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGRA2GRAY if frame.shape[2] == 4
                                                          else cv2.COLOR_BGR2GRAY)
        gray = cv2.equalizeHist(gray)
        # Cost grows with pixels: search about 960 px wide, but never below three quarters of
        # the frame, so a face the 720p search finds (≥ ~75 px) is found at 1080p and 4K too:
        # searched at 960 px wide, a 90 px face in a 4K or 1080p frame went out unblurred.
        # That costs ~0.6–1 s (720p), 1.4–2.6 s (1080p) and 5–11 s (4K) of CPU per event
        # (benchmarks/blur_cost.py), on the niced evidence thread. Small frames are upscaled so their small faces fit the 24 px window.
        scale = 2.0 if max(gray.shape) < 640 else max(0.75, min(1.0, 960 / max(gray.shape)))
        if scale != 1.0:
            h, w = gray.shape
            gray = cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_LINEAR)
        boxes = []
        with self._lock:
            for kind, cascades in self._cascades.items():
                for cascade in cascades:
                    found = cascade.detectMultiScale(gray, scaleFactor=1.15, minNeighbors=3,
                                                     minSize=(int(self.min_face_px * scale),) * 2)
                    boxes += [tuple(int(v / scale) for v in b) for b in np.asarray(found).reshape(-1, 4)]
        return boxes

    def blur(self, frame: np.ndarray, regions: list[tuple[int, int, int, int]] = (),
             cascades: bool = True) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
        """Blur what the cascades find and `regions` (x, y, w, h: heads and plates from the
        detector's person and vehicle boxes, regions_from_detections)."""
        out = frame.copy()
        boxes = (self.find(frame) if cascades else []) + list(regions)
        h, w = frame.shape[:2]
        for x, y, bw, bh in boxes:
            mx, my = int(bw * self.margin), int(bh * self.margin)
            x1, y1, x2, y2 = max(0, x - mx), max(0, y - my), min(w, x + bw + mx), min(h, y + bh + my)
            if x2 <= x1 or y2 <= y1:
                continue
            # Pixelate to ~6 blocks across, then blur over a block: no feature of a face (eyes,
            # nose, mouth) survives, unlike a light Gaussian blur that a cascade still finds.
            bw2, bh2 = x2 - x1, y2 - y1
            small = cv2.resize(out[y1:y2, x1:x2], (max(1, bw2 // max(8, bw2 // 6)), max(1, bh2 // max(8, bh2 // 6))),
                               interpolation=cv2.INTER_AREA)
            coarse = cv2.resize(small, (bw2, bh2), interpolation=cv2.INTER_LINEAR)
            out[y1:y2, x1:x2] = cv2.GaussianBlur(coarse, (0, 0), max(2.0, max(bw2, bh2) / 8))
        if boxes:
            log.debug("blurred %d face/plate region(s)", len(boxes))
        return out, boxes
