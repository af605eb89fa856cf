"""Reading and checking YOLO label files; a bad line is an error naming the file and line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vision.yaml_file import read_yaml

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
    return names_of(read_yaml(data, LabelError), data)


def names_of(spec: object, path: Path) -> list[str]:
    """The class names of a parsed data.yaml, in class-id order; `path` is named in errors."""
    if not isinstance(spec, dict):
        raise LabelError(f"{path}: expected a mapping (names:, train:, ...), not a {type(spec).__name__}")
    if "names" not in spec:
        raise LabelError(f"{path}: no 'names' (the class names)")
    names = spec["names"]
    if isinstance(names, dict):
        # ultralytics writes {0: a, 1: b}; a hand-edited file may quote the ids, but they must be ids
        try:
            ids = {int(k): v for k, v in names.items()}
        except (TypeError, ValueError):
            raise LabelError(f"{path}: 'names' keys must be class ids 0..{len(names) - 1}, "
                             f"not {sorted(map(str, names))[:3]}") from None
        if sorted(ids) != list(range(len(ids))):
            raise LabelError(f"{path}: 'names' ids must be 0..{len(ids) - 1}, not {sorted(ids)}")
        names = [ids[i] for i in range(len(ids))]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise LabelError(f"{path}: 'names' must be a list of class names or a mapping of id to name")
    return names


def label_of(image: Path) -> Path:
    """The label file of an image as ultralytics finds it: the last `images` folder of its path
    becomes `labels` (images/val/x.jpg → labels/val/x.txt, valid/images/x.jpg → valid/labels/x.txt);
    without one, x.txt beside the image."""
    parts = list(image.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return Path(*parts).with_suffix(".txt")


def images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
