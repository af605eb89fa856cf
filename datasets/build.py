"""Build an ultralytics-ready dataset folder from a recipe (`streetwatch dataset build RECIPE`).

Output: images/{train,val,test}, labels/..., data.yaml, and sources.csv, which tags every
image with its source and whether it is a real photo or synthetic, so that evaluation can
report the two apart. Everything is written to a temporary folder first and renamed into
place at the end: a failed build never leaves a half-written dataset.
"""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

import cv2
import yaml
from tqdm import tqdm

from datasets.output import check_replaceable, swap_in
from datasets.recipe import SPLITS, BoxedCsvSource, CompositeSource, Recipe, SyntheticSource, YoloSource
from datasets.synth.crops import CropBank
from datasets.synth.generate import yolo_line
from datasets.synth.scene import CLASSES as SYNTH_CLASSES, random_scene, render_scene
from datasets.yolo_labels import LabelError, images_in, label_of, read_labels, source_names

SPLIT_SEED_OFFSET = {"train": 0, "val": 500_000, "test": 750_000}  # disjoint seeds per split
FINGERPRINT = "sources.sha256"  # in a build: what its source folders held when it was built


class Summary:
    """Images and boxes per class, per source and split, printed as a table at the end."""

    def __init__(self, classes: list[str]):
        self.classes = classes
        self.images: Counter = Counter()
        self.boxes: dict[tuple[str, str], Counter] = defaultdict(Counter)
        self.notes: list[str] = []  # what a source left out, said under the table

    def add(self, source: str, split: str, class_ids: list[int]) -> None:
        self.images[(source, split)] += 1
        self.add_boxes(source, split, class_ids)

    def add_boxes(self, source: str, split: str, class_ids: list[int]) -> None:
        self.boxes[(source, split)].update(self.classes[c] for c in class_ids)

    def table(self) -> str:
        head = ["source", "split", "images", *self.classes]
        rows = [[s, sp, str(n), *(str(self.boxes[(s, sp)][c]) for c in self.classes)]
                for (s, sp), n in sorted(self.images.items())]
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
        fmt = lambda r: "  ".join(v.rjust(w) if i >= 2 else v.ljust(w) for i, (v, w) in enumerate(zip(r, widths)))
        return "\n".join([fmt(head), fmt(["-" * w for w in widths]), *map(fmt, rows), *self.notes])


def _split_counts(total: int, ratios: dict[str, float]) -> dict[str, int]:
    counts = {s: int(total * ratios.get(s, 0)) for s in SPLITS}
    counts["train"] += total - sum(counts.values())
    return counts


def _assign_split(stem: str, seed: int, ratios: dict[str, float]) -> str:
    """Stable per-image split: the same image lands in the same split on every build."""
    u = int(hashlib.sha256(f"{seed}:{stem}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    edge = 0.0
    for split in SPLITS:
        edge += ratios.get(split, 0)
        if u < edge:
            return split
    return "train"


def _order_groups(folder: Path) -> dict[str, str]:
    """image file → the work order it shows, for a review export (its provenance.csv): the
    frames of one order go to one split, so a stall seen 200 times is never on both sides."""
    path = folder / "provenance.csv"
    if not path.is_file():
        return {}
    with path.open(newline="") as f:
        return {row["image"]: f"order-{row['order_id']}" for row in csv.DictReader(f)}


def _yolo_plan(src: YoloSource, recipe: Recipe) -> list[tuple[Path, str, str]]:
    """(image, recipe split, name in the build) for every image a YOLO source gives."""
    # folder → the recipe splits it feeds; a folder named for several splits (say the source's
    # train folder for both train and val) is shared between them by the recipe's ratios
    plan: dict[Path, dict[str, float]] = {}
    if src.splits:
        for split, folder in src.splits.items():
            plan.setdefault(src.path / folder, {})[split] = recipe.splits.get(split, 0.0) or 1.0
    else:
        folders = [p for p in sorted(src.path.iterdir()) if (p / "images").is_dir()] or [src.path]
        plan = {folder: dict(recipe.splits) for folder in folders}
    out, taken = [], set()
    for folder, ratios in plan.items():
        total = sum(ratios.values())
        ratios = {k: v / total for k, v in ratios.items()}
        images = images_in(folder / "images")[: src.limit] if src.limit else images_in(folder / "images")
        groups = _order_groups(folder)
        for image in images:
            key = groups.get(image.name, image.stem)
            split = next(iter(ratios)) if len(ratios) == 1 else _assign_split(key, recipe.seed, ratios)
            # Two folders of a source may both hold an x.jpg: the second keeps its folder's name
            # rather than overwrite the first.
            name = f"{src.name}__{image.stem}"
            if name in taken:
                name = f"{src.name}__{folder.name}__{image.stem}"
            if name in taken:
                raise LabelError(f"source {src.name}: two images named {image.stem} in {folder}")
            taken.add(name)
            out.append((image, split, name))
    return out


def _held_out(recipe: Recipe, folder: Path) -> set[Path]:
    """Images of `folder` that the recipe's YOLO sources put in val or test: crops must not
    carry them into training."""
    held = set()
    for src in recipe.sources:
        if isinstance(src, YoloSource) and src.path.resolve() == folder.resolve():
            held |= {image.resolve() for image, split, _ in _yolo_plan(src, recipe) if split != "train"}
    return held


def _synthetic(src: SyntheticSource, recipe: Recipe, root: Path, summary: Summary, tags: list) -> None:
    remap = {i: recipe.classes.index(n) for i, n in enumerate(SYNTH_CLASSES) if n in recipe.classes}
    crops = CropBank(src.garbage_crops, exclude=_held_out(recipe, src.garbage_crops)) if src.garbage_crops else None
    share = src.crop_share if crops else 0.0
    for split, count in _split_counts(src.images, recipe.splits).items():
        base = src.seed * 1_000_000 + SPLIT_SEED_OFFSET[split]
        for seed in tqdm(range(base, base + count), desc=f"{src.name}/{split}", unit="img", disable=count == 0):
            img, labels = render_scene(random_scene(seed, src.width, src.height, crop_share=share), crops)
            name = f"{src.name}__{seed:07d}"
            cv2.imwrite(str(root / "images" / split / f"{name}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 92])
            kept = [lb for lb in labels if lb.class_id in remap]
            for lb in kept:
                lb.class_id = remap[lb.class_id]
            (root / "labels" / split / f"{name}.txt").write_text("".join(yolo_line(lb, src.width, src.height) + "\n" for lb in kept))
            summary.add(src.name, split, [lb.class_id for lb in kept])
            tags.append((f"images/{split}/{name}.jpg", split, src.name, "synthetic"))


def _yolo(src: YoloSource, recipe: Recipe, root: Path, summary: Summary, tags: list) -> None:
    names = source_names(src.path)
    unknown = sorted(set(src.class_map) - set(names))
    if unknown:
        raise LabelError(f"source {src.name}: class_map names {unknown} not in {src.path / 'data.yaml'} ({names})")
    remap = {i: recipe.classes.index(src.class_map[n]) for i, n in enumerate(names) if src.class_map.get(n)}
    for image, split, name in tqdm(_yolo_plan(src, recipe), desc=src.name, unit="img"):
        boxes = read_labels(label_of(image), len(names))
        dest = root / "images" / split / f"{name}{image.suffix.lower()}"
        try:
            os.link(image, dest)  # same disk: no copy
        except OSError:
            shutil.copy2(image, dest)
        kept = [b for b in boxes if b.class_id in remap]
        lines = [f"{remap[b.class_id]} {b.line().split(' ', 1)[1]}" for b in kept]
        (root / "labels" / split / f"{name}.txt").write_text("".join(line + "\n" for line in lines))
        summary.add(src.name, split, [remap[b.class_id] for b in kept])
        tags.append((f"images/{split}/{dest.name}", split, src.name, "real"))


def sources_fingerprint(recipe: Recipe) -> str:
    """A digest of every file in the recipe's folders (name, size, modification time): the same
    recipe over a source that gained or changed files (a new review export) is a new dataset."""
    folders = [src.path for src in recipe.sources if isinstance(src, YoloSource)]
    folders += [src.garbage_crops for src in recipe.sources if isinstance(src, SyntheticSource) and src.garbage_crops]
    folders += [src.images for src in recipe.sources if isinstance(src, BoxedCsvSource)]
    digest = hashlib.sha256()
    for src in recipe.sources:  # new boxes or labels in the CSVs are a new dataset
        if isinstance(src, BoxedCsvSource):
            for csv_file in (src.boxes, src.labels):
                digest.update(f"csv\t{csv_file}\t{hashlib.sha256(Path(csv_file).read_bytes()).hexdigest()}\n".encode())
    if recipe.context is not None:  # other weights label other boxes
        stat = Path(recipe.context.weights).stat()
        digest.update(f"context\t{recipe.context.weights}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    for folder in folders:
        digest.update(f"{folder}\n".encode())
        # ultralytics' label caches change when someone trains on the folder itself, not its data
        for path in sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix != ".cache"):
            stat = path.stat()
            digest.update(f"{path.relative_to(folder)}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def is_built(recipe: Recipe, out: Path) -> bool:
    """Whether `out` holds a build of this recipe from its sources as they are now."""
    built, stamp = Path(out) / "recipe.yaml", Path(out) / FINGERPRINT
    if not built.is_file() or not stamp.is_file():
        return False
    try:
        same_recipe = yaml.safe_load(built.read_text(encoding="utf-8")) == recipe.model_dump(mode="json")
    except (yaml.YAMLError, UnicodeDecodeError):
        return False  # a damaged build is rebuilt, not trusted
    return same_recipe and stamp.read_text().strip() == sources_fingerprint(recipe)


def build_dataset(recipe: Recipe, out: Path) -> tuple[Path, Summary]:
    out = Path(out).resolve()
    check_replaceable(out)
    fingerprint = sources_fingerprint(recipe)  # before reading them: a change during the build is seen next time
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        for kind in ("images", "labels"):
            for split in SPLITS:
                (tmp / kind / split).mkdir(parents=True)
        summary, tags = Summary(recipe.classes), []
        for src in recipe.sources:
            if isinstance(src, CompositeSource):
                from datasets.composite import build_composites

                of = next(s for s in recipe.sources if isinstance(s, YoloSource) and s.name == src.of)
                build_composites(src, recipe, tmp, _yolo_plan(of, recipe), summary, tags)
            elif isinstance(src, BoxedCsvSource):
                from datasets.boxed_photos import build_boxed

                unboxed = build_boxed(src, recipe, tmp, summary, tags)
                if unboxed:
                    summary.notes.append(f"{src.name}: {len(unboxed)} clutter photos left out, "
                                         f"not boxed in {src.boxes.name}")
            else:
                (_synthetic if isinstance(src, SyntheticSource) else _yolo)(src, recipe, tmp, summary, tags)
        if recipe.context is not None:
            from datasets.context import add_context_labels

            ids = {name: i for i, name in enumerate(recipe.classes)}
            cache = out.parent / ".context-cache"
            for (source, split), added in add_context_labels(recipe.context, tmp, [t[:3] for t in tags], ids, cache).items():
                summary.add_boxes(source, split, added)
        with (tmp / "sources.csv").open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["image", "split", "source", "origin"])
            writer.writerows(tags)
        data = {"path": str(out), "train": "images/train", "val": "images/val", "test": "images/test",
                "names": dict(enumerate(recipe.classes))}
        (tmp / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        (tmp / "recipe.yaml").write_text(yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False))
        (tmp / FINGERPRINT).write_text(fingerprint + "\n")
        swap_in(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out / "data.yaml", summary
