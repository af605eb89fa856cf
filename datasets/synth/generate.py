"""Write synthetic scenes as an ultralytics-ready YOLO dataset (images/, labels/, data.yaml)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import cv2
import yaml
from tqdm import tqdm

from datasets.output import check_replaceable, swap_in
from datasets.synth.scene import CLASSES, Label, random_scene, render_scene


def yolo_line(label: Label, width: int, height: int) -> str:
    x1, y1, x2, y2 = label.box
    return (
        f"{label.class_id} {(x1 + x2) / 2 / width:.6f} {(y1 + y2) / 2 / height:.6f} "
        f"{(x2 - x1) / width:.6f} {(y2 - y1) / height:.6f}"
    )


def write_split(root: Path, split: str, seeds: range, width: int, height: int, desc: str) -> int:
    (root / "images" / split).mkdir(parents=True, exist_ok=True)
    (root / "labels" / split).mkdir(parents=True, exist_ok=True)
    boxes = 0
    for seed in tqdm(seeds, desc=desc, unit="img"):
        img, labels = render_scene(random_scene(seed, width, height))
        name = f"synth_{seed:07d}"
        cv2.imwrite(str(root / "images" / split / f"{name}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 92])
        lines = [yolo_line(lb, width, height) for lb in labels]
        (root / "labels" / split / f"{name}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
        boxes += len(lines)
    return boxes


def build_synthetic_dataset(out: Path, n_train: int, n_val: int, seed: int = 0, width: int = 640, height: int = 360) -> Path:
    """Render train/val splits with disjoint seed ranges; written to a temp dir, then renamed."""
    out = Path(out)
    check_replaceable(out)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent if out.parent.exists() else None))
    try:
        base = seed * 1_000_000
        write_split(tmp, "train", range(base, base + n_train), width, height, "train")
        write_split(tmp, "val", range(base + 500_000, base + 500_000 + n_val), width, height, "val")
        data = {"path": str(out.resolve()), "train": "images/train", "val": "images/val", "names": dict(enumerate(CLASSES))}
        (tmp / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        swap_in(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out / "data.yaml"
