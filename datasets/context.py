"""Context labels in a dataset build: every image (synthetic and real) gets boxes of the recipe's
context classes (people, vehicles, furniture) from the official COCO checkpoint
(vision/coco_labeller.py), appended to the labels its source gave it.

Labelling ~5000 images takes minutes on a CPU, so the boxes are cached by image content and
checkpoint: a rebuild (new review export, changed recipe) labels only images it has not seen.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
from tqdm import tqdm

from datasets.recipe import ContextLabels
from datasets.synth.generate import yolo_line
from datasets.synth.scene import Label
from datasets.yolo_labels import LabelError

CACHE_FLOOR = 0.25  # boxes are cached down to this score; the recipe's conf filters above it


def _cache_file(cache: Path, image: Path, weights_sha: str, imgsz: int) -> Path:
    digest = hashlib.sha256(image.read_bytes()).hexdigest()[:32]
    return cache / f"{weights_sha[:12]}-{imgsz}" / f"{digest}.json"


def add_context_labels(context: ContextLabels, root: Path, images: list[tuple[str, str, str]],
                       class_ids: dict[str, int], cache: Path) -> dict[tuple[str, str], list[int]]:
    """Append context boxes to the label file of each (image path relative to root, split,
    source); returns the class ids added per (source, split), for the build's summary."""
    from vision.coco_labeller import CocoLabeller

    labeller = CocoLabeller(context.weights, imgsz=context.imgsz, conf=CACHE_FLOOR)
    unknown = sorted(set(context.classes) - set(labeller.names))
    if unknown:
        raise LabelError(f"context: {unknown} are not classes of {context.weights.name} ({labeller.names[:5]}, ...)")
    weights_sha = hashlib.sha256(Path(context.weights).read_bytes()).hexdigest()
    added: dict[tuple[str, str], list[int]] = {}
    for rel, split, source in tqdm(images, desc="context labels", unit="img"):
        image = root / rel
        cached = _cache_file(cache, image, weights_sha, context.imgsz)
        if cached.is_file():
            seen = json.loads(cached.read_text())
            (h, w), boxes = seen["shape"], seen["boxes"]
        else:
            img = cv2.imread(str(image))
            if img is None:
                continue  # ultralytics skips it as well
            h, w = img.shape[:2]
            boxes = [[b.name, round(b.score, 4), *[round(v, 1) for v in b.xyxy]] for b in labeller(img)]
            cached.parent.mkdir(parents=True, exist_ok=True)
            cached.write_text(json.dumps({"shape": [h, w], "boxes": boxes}))
        lines, ids = [], []
        for name, score, x1, y1, x2, y2 in boxes:
            if name in context.classes and score >= context.conf and x2 > x1 and y2 > y1:
                cid = class_ids[context.classes[name]]
                lines.append(yolo_line(Label(cid, (x1, y1, x2, y2)), w, h) + "\n")
                ids.append(cid)
        if lines:
            label = root / "labels" / split / f"{Path(rel).stem}.txt"
            with label.open("a") as f:
                f.writelines(lines)
        added.setdefault((source, split), []).extend(ids)
    return added
