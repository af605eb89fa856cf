"""Composite source of a dataset build: real photos of another source with water pasted on, wet
roads and camera conditions (datasets/synth/real_paste.py). Tagged `composite` in sources.csv,
so evaluation reports them apart from untouched real photos and from rendered scenes."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from datasets.recipe import CompositeSource, Recipe, YoloSource
from datasets.synth.generate import yolo_line
from datasets.synth.scene import Label
from datasets.synth.real_paste import EFFECTS, camera_effect, paste_water, read_at_most, wet_road
from datasets.yolo_labels import label_of, read_labels, source_names


def _pixel_boxes(image: Path, names: list[str], remap: dict[int, int], w: int, h: int) -> list[tuple[int, tuple]]:
    out = []
    for b in read_labels(label_of(image), len(names)):
        if b.class_id in remap:
            cx, cy, bw, bh = b.cx, b.cy, b.w, b.h
            out.append((remap[b.class_id], ((cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h)))
    return out


def build_composites(src: CompositeSource, recipe: Recipe, root: Path, plan: list[tuple[Path, str, str]],
                     summary, tags: list) -> None:
    """`plan`: the (image, split, name) of the background source, as that source was built."""
    background = next(s for s in recipe.sources if isinstance(s, YoloSource) and s.name == src.of)
    names = source_names(background.path)
    remap = {i: recipe.classes.index(background.class_map[n]) for i, n in enumerate(names) if background.class_map.get(n)}
    flooding = recipe.classes.index("flooding") if "flooding" in recipe.classes else None
    rng = np.random.default_rng(src.seed)
    picks = rng.choice(len(plan), size=src.images, replace=src.images > len(plan))
    for n, index in enumerate(tqdm(picks, desc=src.name, unit="img")):
        image, split, base = plan[int(index)]
        img = read_at_most(image, src.max_side)
        if img is None:
            continue
        h, w = img.shape[:2]
        labelled = _pixel_boxes(image, names, remap, w, h)
        roll = rng.random()
        if roll < src.water_share:
            img, water = paste_water(img, rng, [box for _, box in labelled])
            if water is not None:
                labelled.append((flooding, water))
        elif roll < src.water_share + src.wet_share:
            img = wet_road(img, rng)
        if rng.random() < src.effect_share:
            effect = str(rng.choice(EFFECTS))
            img, boxes = camera_effect(img, [box for _, box in labelled], effect, rng)
            labelled = [(c, box) for (c, _), box in zip(labelled, boxes)]
        name = f"{src.name}__{n:06d}__{base}"
        cv2.imwrite(str(root / "images" / split / f"{name}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
        lines = [yolo_line(Label(c, box), w, h) + "\n" for c, box in labelled]
        (root / "labels" / split / f"{name}.txt").write_text("".join(lines))
        summary.add(src.name, split, [c for c, _ in labelled])
        tags.append((f"images/{split}/{name}.jpg", split, src.name, "composite"))
