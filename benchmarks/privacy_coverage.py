"""How many people in real photos end up unblurred, with the Haar cascades alone, with the
detector's person boxes alone, and with both (what the edge does with a context-class model).

    .venv/bin/python -m benchmarks.privacy_coverage models/streetwatch-v3 PHOTO_FOLDER [...] [--limit 200]

Reference people: the original COCO YOLOv5n checkpoint at 640 px (score ≥ 0.5), a model the
detector under test is not; its head is the top fifth of the person box. A person counts as
blurred when blurred pixels cover at least half of that head. Persons under 24 px tall are left
out (no face to recognise). The reference misses people too: the figures are of the people it
found.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from datasets.yolo_labels import IMAGE_SUFFIXES

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "weights" / "yolov5n-coco" / "yolov5n.pt"


def _covered(regions: list[tuple[int, int, int, int]], shape: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, bool)
    for x, y, w, h in regions:
        mask[max(0, y):max(0, y + h), max(0, x):max(0, x + w)] = True
    return mask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="model folder whose manifest has a person class")
    parser.add_argument("photos", nargs="+", help="folders of real photos")
    parser.add_argument("--reference", default=str(REFERENCE), help="YOLOv5 release checkpoint that finds the people")
    parser.add_argument("--limit", type=int, default=200, help="photos per folder at most")
    parser.add_argument("--imgsz", type=int, help="run the detector at this size (default: its manifest's)")
    args = parser.parse_args()

    from ultralytics import YOLO

    from vision.coco_labeller import CocoLabeller
    from vision.manifest import load_manifest
    from vision.privacy import PrivacyFilter, regions_from_detections

    manifest = load_manifest(args.model)
    if not any(c.name == "person" for c in manifest.classes.values()):
        parser.error(f"{args.model}: its manifest has no person class")
    model = YOLO(str(manifest.weights_path))
    reference = CocoLabeller(args.reference, conf=0.5)
    privacy = PrivacyFilter()
    counts = {"people": 0, "photos with people": 0, "cascades": 0, "detector": 0, "both": 0}
    for folder in args.photos:
        images = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)[: args.limit]
        for image in tqdm(images, desc=Path(folder).name, unit="photo"):
            img = cv2.imread(str(image))
            if img is None:
                continue
            people = [b.xyxy for b in reference(img) if b.name == "person" and b.xyxy[3] - b.xyxy[1] >= 24]
            if not people:
                continue
            counts["photos with people"] += 1
            result = model.predict(img, imgsz=args.imgsz or manifest.imgsz, conf=0.1, verbose=False)[0].boxes
            names = [manifest.classes[int(c)].name for c in result.cls.tolist()]
            by_detector = _covered(regions_from_detections(result.xyxy.numpy(), names), img.shape[:2])
            by_cascades = _covered(privacy.find(img), img.shape[:2])
            for x1, y1, x2, y2 in people:
                head = (slice(int(y1), int(y1 + (y2 - y1) / 5) + 1), slice(int(x1), int(x2) + 1))
                counts["people"] += 1
                c, d = by_cascades[head].mean() >= 0.5, by_detector[head].mean() >= 0.5
                counts["cascades"] += int(c)
                counts["detector"] += int(d)
                counts["both"] += int(c or d)
    n = counts["people"]
    print(f"{n} people (reference: {Path(args.reference).name} at 640 px, score ≥ 0.5) in "
          f"{counts['photos with people']} photos")
    for method in ("cascades", "detector", "both"):
        print(f"  {method:9s} blurred {counts[method]:4d}, unblurred {n - counts[method]:4d} "
              f"({(n - counts[method]) / max(n, 1):.0%})")


if __name__ == "__main__":
    main()
