"""Reading and checking YOLO label files; a bad line is an error naming the file and line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class LabelError(ValueError):
    pass


@dataclass(frozen=True)
class YoloBox:
    class_id: int
    cx: float
    cy: float
    w: float
    h: float

    def line(self) -> str:
        return f"{self.class_id} {self.cx:.6f} {self.cy:.6f} {self.w:.6f} {self.h:.6f}"


def read_labels(path: Path, num_classes: int) -> list[YoloBox]:
    """Parse one label file; a missing file means an image with no boxes (a negative)."""
    if not path.exists():
        return []
    boxes = []
    for n, raw in enumerate(path.read_text().splitlines(), start=1):
        parts = raw.split()
        if not parts:
            continue
        where = f"{path}:{n}"
        if len(parts) != 5:
            raise LabelError(f"{where}: expected 'class cx cy w h' (5 fields), got {len(parts)}")
        try:
            cls = int(parts[0])
            cx, cy, w, h = (float(p) for p in parts[1:])
        except ValueError as exc:
            raise LabelError(f"{where}: not numbers: {raw.strip()!r}") from exc
        if not 0 <= cls < num_classes:
            raise LabelError(f"{where}: class {cls} out of range (0..{num_classes - 1})")
        if not (0 <= cx <= 1 and 0 <= cy <= 1 and 0 < w <= 1 and 0 < h <= 1):
            raise LabelError(f"{where}: box {cx} {cy} {w} {h} outside the normalised range")
        if cx - w / 2 < -0.01 or cx + w / 2 > 1.01 or cy - h / 2 < -0.01 or cy + h / 2 > 1.01:
            raise LabelError(f"{where}: box {cx} {cy} {w} {h} extends outside the image")
        boxes.append(YoloBox(cls, cx, cy, w, h))
    return boxes


def source_names(root: Path) -> list[str]:
    """Class names from a YOLO dataset's data.yaml (list or {id: name} form)."""
    data = root / "data.yaml"
    if not data.is_file():
        raise LabelError(f"{data}: not found (a YOLO source needs its data.yaml for class names)")
    names = yaml.safe_load(data.read_text()).get("names")
    if isinstance(names, dict):
        return [names[k] for k in sorted(names, key=int)]
    if isinstance(names, list):
        return names
    raise LabelError(f"{data}: 'names' must be a list or a mapping")


def label_of(image: Path) -> Path:
    """The label file of an image in the ultralytics layout (images/<split>/x.jpg → labels/<split>/x.txt)."""
    return image.parent.parent.parent / "labels" / image.parent.name / f"{image.stem}.txt"


def images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
