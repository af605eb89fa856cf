"""Boxed-photos source of a dataset build (`kind: boxed_csv`): real photos boxed by hand in a CSV.

    - kind: boxed_csv
      name: amsterdam
      boxes: ../labels/clutter-amsterdam-boxes.csv     # file, split, class, x1, y1, x2, y2 (0..1)
      labels: ../labels/clutter-amsterdam.csv          # file, clutter (1/0), split: image-level
      images: ../../../shared/data/clutter-amsterdam/images
      class_map: {clutter: clutter}

Every boxed photo lands in the split the boxes CSV gives it, with its boxes as YOLO lines. The
image-level CSV's clutter=0 photos come in as negatives (an empty label file), so the detector
also sees clean real streets; their split follows `photo_split`, the rule the boxes CSV was
split with. A clutter=1 photo without boxes is left out rather than taught as clean: an unboxed
pile in a "negative" would punish the detector for finding it. Negatives come only from the
image-level splits that have boxed photos, so a half-boxed set does not become all negatives.

`repeat` writes each train photo that many times; with `effect_share`, that share of the extra
copies is given one camera condition (night, flash, IR, glare, rain, far away, ...: the
real_paste effects), so the repeats teach the same piles seen as street cameras see them at
night rather than the same pixels eight times. The original and val/test photos stay untouched.
"""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from datasets.recipe import SPLITS, BoxedCsvSource, Recipe
from datasets.synth.real_paste import ALL_EFFECTS, camera_effect, read_at_most
from datasets.yolo_labels import LabelError, YoloBox

BOX_COLUMNS = ("file", "split", "class", "x1", "y1", "x2", "y2")
LABEL_COLUMNS = ("file", "clutter", "split")


@dataclass
class Photo:
    file: str
    split: str
    boxes: list[YoloBox] = field(default_factory=list)  # class ids already the recipe's


def photo_split(file: str, image_split: str) -> str:
    """The build split of a photo from its image-level split: test stays test (reported, never
    trained on); the rest is halved by photo, train when the sha1 of the file name is even,
    so checkpoint selection keeps real photos the model never saw."""
    if image_split == "test":
        return "test"
    return "train" if int(hashlib.sha1(file.encode()).hexdigest(), 16) % 2 == 0 else "val"


def _rows(path: Path, columns: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) of a CSV whose header must hold `columns`; '#' lines are comments."""
    with path.open(newline="", encoding="utf-8") as f:
        numbered = [(n, line) for n, line in enumerate(f, start=1) if line.strip() and not line.startswith("#")]
    if not numbered:
        raise LabelError(f"{path}: empty (expected a header with {', '.join(columns)})")
    reader = csv.DictReader(line for _, line in numbered)
    missing = [c for c in columns if c not in (reader.fieldnames or [])]
    if missing:
        raise LabelError(f"{path}:{numbered[0][0]}: header lacks {', '.join(missing)} (has {reader.fieldnames})")
    return [(numbered[i + 1][0], row) for i, row in enumerate(reader)]


def read_image_labels(path: Path) -> dict[str, tuple[int, str]]:
    """file → (clutter 0/1, image-level split)."""
    out: dict[str, tuple[int, str]] = {}
    for n, row in _rows(path, LABEL_COLUMNS):
        where, file = f"{path}:{n}", (row["file"] or "").strip()
        if row["clutter"] not in ("0", "1"):
            raise LabelError(f"{where}: clutter must be 1 or 0, not {row['clutter']!r}")
        if row["split"] not in SPLITS:
            raise LabelError(f"{where}: split must be one of {', '.join(SPLITS)}, not {row['split']!r}")
        if not file or file in out:
            raise LabelError(f"{where}: file {file!r} is empty or listed twice")
        out[file] = (int(row["clutter"]), row["split"])
    return out


def _corners(row: dict[str, str], where: str) -> tuple[float, float, float, float]:
    try:
        x1, y1, x2, y2 = (float(row[k]) for k in ("x1", "y1", "x2", "y2"))
    except (TypeError, ValueError):
        raise LabelError(f"{where}: x1, y1, x2, y2 must be numbers, not "
                         f"{[row.get(k) for k in ('x1', 'y1', 'x2', 'y2')]}") from None
    if not (0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1):
        raise LabelError(f"{where}: box {x1} {y1} {x2} {y2} must have 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1")
    return x1, y1, x2, y2


def read_boxed(src: BoxedCsvSource, recipe: Recipe, labels: dict[str, tuple[int, str]]) -> list[Photo]:
    """The boxed photos (boxes mapped to the recipe's classes), checked against the image-level
    `labels`: a box on a photo they call clean, or in another split family, is an error, not a guess."""
    photos: dict[str, Photo] = {}
    for n, row in _rows(src.boxes, BOX_COLUMNS):
        where, file = f"{src.boxes}:{n}", (row["file"] or "").strip()
        if file not in labels:
            raise LabelError(f"{where}: file {file!r} is not in {src.labels}")
        clutter, image_split = labels[file]
        if clutter == 0:
            raise LabelError(f"{where}: file {file} is boxed but {src.labels} says clutter=0")
        split = row["split"]
        if split not in SPLITS:
            raise LabelError(f"{where}: split must be one of {', '.join(SPLITS)}, not {split!r}")
        if (split == "test") != (image_split == "test"):
            raise LabelError(f"{where}: split {split} for a photo that {src.labels} puts in {image_split}: "
                             "test photos stay test, the others never become test")
        name = row["class"]
        if name not in src.class_map:
            raise LabelError(f"{where}: class {name!r} is not in the source's class_map ({sorted(src.class_map)})")
        photo = photos.setdefault(file, Photo(file, split))
        if photo.split != split:
            raise LabelError(f"{where}: file {file} is in split {split} here and {photo.split} on an earlier line")
        x1, y1, x2, y2 = _corners(row, where)
        if src.class_map[name] is not None:
            photo.boxes.append(YoloBox(recipe.classes.index(src.class_map[name]),
                                       (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1))
    return list(photos.values())


def plan_photos(src: BoxedCsvSource, recipe: Recipe) -> tuple[list[Photo], list[str]]:
    """(photos to build, clutter=1 files left out because nobody boxed them)."""
    labels = read_image_labels(src.labels)
    boxed = read_boxed(src, recipe, labels)
    done = {p.file for p in boxed}
    families = {labels[p.file][1] for p in boxed}  # image-level splits that have been boxed
    negatives = [Photo(f, photo_split(f, s)) for f, (c, s) in labels.items() if c == 0 and s in families]
    unboxed = [f for f, (c, s) in labels.items() if c == 1 and f not in done]
    photos = boxed + negatives
    if src.limit:  # quick runs: the first photos of each split, boxed ones first
        per_split = {split: [p for p in photos if p.split == split][: src.limit] for split in SPLITS}
        photos = [p for split in SPLITS for p in per_split[split]]
    return photos, unboxed


def changed_copy(image: Path, boxes: list[YoloBox], src: BoxedCsvSource,
                 rng: np.random.Generator) -> tuple[np.ndarray, list[YoloBox], str]:
    """The photo at most `max_side` large with one camera condition applied, its boxes moved
    with it (only "small" moves them), and the condition's name."""
    img = read_at_most(image, src.max_side)
    if img is None:
        raise LabelError(f"source {src.name}: not an image OpenCV can read: {image}")
    h, w = img.shape[:2]
    corners = [((b.cx - b.w / 2) * w, (b.cy - b.h / 2) * h, (b.cx + b.w / 2) * w, (b.cy + b.h / 2) * h) for b in boxes]
    effect = str(rng.choice(ALL_EFFECTS))
    img, corners = camera_effect(img, corners, effect, rng)
    moved = [YoloBox(b.class_id, (x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h)
             for b, (x1, y1, x2, y2) in zip(boxes, corners)]
    return img, moved, effect


def build_boxed(src: BoxedCsvSource, recipe: Recipe, root: Path, summary, tags: list) -> list[str]:
    """Write the photos and their label files into the build at `root`; returns the unboxed
    clutter photos left out (the build prints how many)."""
    photos, unboxed = plan_photos(src, recipe)
    rng = np.random.default_rng(src.seed)
    for photo in tqdm(photos, desc=src.name, unit="img"):
        image = src.images / photo.file
        if not image.is_file():
            raise LabelError(f"source {src.name}: image not found: {image} (listed in {src.labels})")
        for copy in range(src.repeat if photo.split == "train" else 1):
            stem = Path(photo.file).stem + (f"__r{copy}" if copy else "")
            boxes, kind = photo.boxes, "real"
            if copy and rng.random() < src.effect_share:
                img, boxes, effect = changed_copy(image, photo.boxes, src, rng)
                stem, kind = f"{stem}__{effect}", "composite"
                dest = root / "images" / photo.split / f"{src.name}__{stem}.jpg"
                cv2.imwrite(str(dest), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
            else:
                dest = root / "images" / photo.split / f"{src.name}__{stem}{image.suffix.lower()}"
                try:
                    os.link(image, dest)  # same disk: no copy; the photos never enter git
                except OSError:
                    shutil.copy2(image, dest)
            (root / "labels" / photo.split / f"{src.name}__{stem}.txt").write_text(
                "".join(b.line() + "\n" for b in boxes))
            summary.add(src.name, photo.split, [b.class_id for b in boxes])
            tags.append((f"images/{photo.split}/{dest.name}", photo.split, src.name, kind))
    return unboxed
