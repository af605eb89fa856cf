"""`streetwatch eval MODEL DATA`: box mAP per class and image-level precision/recall per issue type,
reported separately for real photos and synthetic images (as tagged in the dataset's sources.csv).

Writes eval.md (the tables) and a PR-curve PNG per origin next to the report.
"""

from __future__ import annotations

import csv
import logging
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import yaml

from datasets.yolo_labels import IMAGE_SUFFIXES, LabelError, label_of, names_of, read_labels
from vision.failures import contact_sheet, mistakes, tile_sheet
from vision.manifest import ModelManifest, load_manifest
from vision.yaml_file import read_yaml

log = logging.getLogger("streetwatch.eval")


def _data_root(spec: dict, data: Path) -> Path:
    """The dataset folder: `path` of the data.yaml, relative to the file's own folder (as
    garbage-cn's `path: .` means), or that folder when there is none. One of our builds
    (sources.csv beside its data.yaml) is its own folder, wherever it has been moved since."""
    if (data.parent / "sources.csv").is_file():
        return data.parent.resolve()
    path = spec.get("path")
    if path is not None and not isinstance(path, str):
        raise LabelError(f"{data}: 'path' must be a folder, not {path!r}")
    root = Path(path or ".")
    return (root if root.is_absolute() else data.parent / root).resolve()


def _split_images(spec: dict, data: Path, root: Path, split: str) -> list[Path]:
    """The images of the data.yaml's `split` entry: a folder (images/val in our builds,
    valid/images in Roboflow's), a .txt list of images, or a list of those."""
    entry = spec.get(split)
    if entry is None:
        raise LabelError(f"{data}: no '{split}' entry (the folder of the {split} images)")
    images: list[Path] = []
    for item in entry if isinstance(entry, list) else [entry]:
        where = Path(str(item)) if Path(str(item)).is_absolute() else root / str(item)
        if where.is_dir():
            images += sorted(p for p in where.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        elif where.suffix == ".txt" and where.is_file():
            # ultralytics: relative lines are relative to the list's folder
            lines = [line.strip() for line in where.read_text().splitlines() if line.strip()]
            images += [Path(line) if Path(line).is_absolute() else where.parent / line for line in lines]
        else:
            raise LabelError(f"{data}: {split}: folder not found: {where}")
    return images


def _lists_by_origin(data_root: Path, spec: dict, data: Path, split: str) -> dict[str, list[Path]]:
    sources = data_root / "sources.csv"
    groups: dict[str, list[Path]] = defaultdict(list)
    if sources.is_file():  # one of our builds: its images tagged real or synthetic
        for row in csv.DictReader(sources.open()):
            if row["split"] == split:
                groups[row["origin"]].append(data_root / row["image"])
    else:  # a plain YOLO folder: no tags, one group
        groups["untagged"] = _split_images(spec, data, data_root, split)
    return groups


def _readable(images: list[Path]) -> tuple[list[Path], list[Path]]:
    """(images cv2 can decode, those it cannot): ultralytics' predict gives no result for an
    unreadable file and its val drops it, so such files are left out of every figure."""
    import cv2

    ok, bad = [], []
    for image in images:
        # an eighth of the size is enough to know it decodes, and much faster on big photos
        (ok if cv2.imread(str(image), cv2.IMREAD_REDUCED_GRAYSCALE_8) is not None else bad).append(image)
    return ok, bad


def _image_level(manifest: ModelManifest, model, images: list[Path], names: list[str]) -> dict[str, dict[str, float]]:
    """Per issue type: does the image contain the issue (label) / did the model say so (threshold),
    and the threshold-free figures of ranking the images by their best score for it."""
    from vision.image_metrics import summary

    class_issue = {i: manifest.issue_type_of(manifest_id) for i, n in enumerate(names)
                   for manifest_id, c in manifest.classes.items() if c.name == n}
    issues = sorted({t.value for t in class_issue.values() if t})
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # tp, fp, fn
    scores: dict[str, list[float]] = defaultdict(list)
    truths: dict[str, list[bool]] = defaultdict(list)
    for image in images:
        truth = {class_issue.get(b.class_id) for b in read_labels(label_of(image), len(names))} - {None}
        truth = {t.value for t in truth}
        result = model.predict(str(image), imgsz=manifest.imgsz, conf=0.05, verbose=False)[0].boxes
        best: dict[str, float] = defaultdict(float)
        said = set()
        for c, s in zip(result.cls.tolist(), result.conf.tolist()):
            if (issue := manifest.issue_type_of(int(c))) is not None:
                best[issue.value] = max(best[issue.value], s)
                if s >= manifest.threshold_of(int(c)):
                    said.add(issue.value)
        for issue in issues:
            tp, fp, fn = counts[issue]
            counts[issue] = [tp + (issue in said and issue in truth), fp + (issue in said and issue not in truth),
                             fn + (issue not in said and issue in truth)]
            scores[issue].append(best[issue])
            truths[issue].append(issue in truth)
    out = {}
    for issue, (tp, fp, fn) in counts.items():
        out[issue] = {"precision": tp / (tp + fp) if tp + fp else float("nan"),
                      "recall": tp / (tp + fn) if tp + fn else float("nan"), "positives": tp + fn,
                      "ranking": summary(scores[issue], truths[issue])}
    return out


def read_image_labels(csv_path: Path, images: Path, issue: str, split: str | None = None) -> list[tuple[Path, bool]]:
    """Rows of an image-level label file (`file,<issue>,note`: 1 if the photo shows the issue),
    only those of `split` when given (the file then needs a `split` column)."""
    rows = []
    with Path(csv_path).open(newline="") as f:
        reader = csv.DictReader(f)
        if issue not in (reader.fieldnames or []) or "file" not in (reader.fieldnames or []):
            raise LabelError(f"{csv_path}: needs the columns file and {issue}, has {reader.fieldnames}")
        if split is not None and "split" not in (reader.fieldnames or []):
            raise LabelError(f"{csv_path}: no split column to take the {split!r} rows from")
        for line, row in enumerate(reader, start=2):
            if split is not None and row["split"] != split:
                continue
            if row[issue] not in ("0", "1"):
                raise LabelError(f"{csv_path}:{line}: {issue} must be 0 or 1, not {row[issue]!r}")
            image = Path(images) / row["file"]
            if not image.is_file():
                raise FileNotFoundError(f"{csv_path}:{line}: no image {image}")
            rows.append((image, row[issue] == "1"))
    return rows


def image_level_on_labels(model_dir: Path, csv_path: Path, images: Path, issue: str = "clutter",
                          model=None, split: str | None = None, imgsz: int | None = None) -> dict:
    """Precision and recall of "this photo shows `issue`" at the manifest's thresholds, on
    photos labelled at image level (no boxes), with the files it got wrong; and the
    threshold-free figures of the ranking by each photo's best score (vision/image_metrics.py)."""
    from ultralytics import YOLO

    from vision.image_metrics import summary

    manifest = at_size(load_manifest(model_dir), imgsz)
    model = model or YOLO(str(manifest.weights_path), task=manifest.task)
    tp = fp = fn = tn = 0
    wrong: list[tuple[str, str, float]] = []
    scores, truths = [], []
    # the other issue types on photos labelled for this one: what a false vending or flooding
    # order on a real street photo would cost (such sets show none of them)
    others = sorted({c.issue_type.value for c in manifest.classes.values() if c.issue_type} - {issue})
    flagged = {other: 0 for other in others}
    for image, truth in read_image_labels(csv_path, images, issue, split=split):
        boxes = model.predict(str(image), imgsz=manifest.imgsz, conf=0.01, verbose=False)[0].boxes
        for other in {t.value for c, s in zip(boxes.cls.tolist(), boxes.conf.tolist())
                      if (t := manifest.issue_type_of(int(c))) is not None and s >= manifest.threshold_of(int(c))} & set(others):
            flagged[other] += 1
        of_issue = [(int(c), s) for c, s in zip(boxes.cls.tolist(), boxes.conf.tolist())
                    if (t := manifest.issue_type_of(int(c))) is not None and t.value == issue]
        best = max((s for _, s in of_issue), default=0.0)
        said = any(s >= manifest.threshold_of(c) for c, s in of_issue)
        tp, fp, fn, tn = tp + (said and truth), fp + (said and not truth), fn + (truth and not said), tn + (not said and not truth)
        scores.append(best)
        truths.append(truth)
        if said != truth:
            wrong.append((image.name, "false alarm" if said else "missed", round(best, 3)))
    return {"issue": issue, "images": tp + fp + fn + tn, "positives": tp + fn, "tp": tp, "fp": fp, "fn": fn, "tn": tn,
            "precision": tp / (tp + fp) if tp + fp else float("nan"),
            "recall": tp / (tp + fn) if tp + fn else float("nan"), "wrong": wrong,
            "ranking": summary(scores, truths), "flagged_other": flagged}


def wrong_calls_picture(result: dict, images: Path, out: Path, limit: int = 24) -> Path | None:
    """A contact sheet of the wrong calls (missed / false alarm, best score), to look at."""
    import cv2

    tiles = []
    for name, what, score in result["wrong"][:limit]:
        img = cv2.imread(str(Path(images) / name))
        if img is None:
            continue
        tile = cv2.resize(img, (240, 180), interpolation=cv2.INTER_AREA)
        colour = (0, 0, 230) if what == "false alarm" else (0, 170, 255)
        cv2.rectangle(tile, (0, 0), (239, 22), (0, 0, 0), -1)
        cv2.putText(tile, f"{what} {score:.2f}", (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
        tiles.append(tile)
    return tile_sheet(tiles, out, 6)


def image_labels_report(result: dict, title: str) -> str:
    lines = [f"## {title}: image-level {result['issue']} ({result['images']} real photos, {result['positives']} with it)", "",
             "| precision | recall | TP | FP | FN | TN |", "|---|---|---|---|---|---|",
             f"| {result['precision']:.3f} | {result['recall']:.3f} | {result['tp']} | {result['fp']} | {result['fn']} | {result['tn']} |",
             "", *ranking_table([(result["issue"], result["ranking"])]), "",
             *[f"Photos flagged {other} (at its threshold): {n} of {result['images']} ({n / max(result['images'], 1):.1%})"
               for other, n in result.get("flagged_other", {}).items()], "", "Wrong calls (file, what, best score):", ""]
    lines += [f"- {name}: {what} ({score:.2f})" for name, what, score in result["wrong"]] or ["- none"]
    return "\n".join(lines) + "\n"


def ranking_table(rows: list[tuple[str, dict]]) -> list[str]:
    """Threshold-free lines: image-level AP (ranking by the best score), best recall at precision
    ≥ 0.85 and ≥ 0.90, and the base rate, which is the AP a random ranking gets."""
    lines = ["| issue type | image AP | base rate | recall at P≥0.85 | recall at P≥0.90 |", "|---|---|---|---|---|"]
    for issue, r in rows:
        lines.append(f"| {issue} | {r['ap']:.3f} | {r['base_rate']:.2f} | {r['recall_at_p85']:.2f} | {r['recall_at_p90']:.2f} |")
    return lines


class _PredictOnce:
    """The image-level table and the failure sheet look at the same predictions: make them once."""

    def __init__(self, model):
        self.model, self._seen = model, {}

    def predict(self, source: str, **kwargs):
        if source not in self._seen:
            self._seen[source] = self.model.predict(source, **kwargs)
        return self._seen[source]

    def val(self, **kwargs):
        return self.model.val(**kwargs)

    def forget(self) -> None:
        self._seen.clear()  # each result holds its image: keep one origin's at most


def at_size(manifest: ModelManifest, imgsz: int | None) -> ModelManifest:
    """The manifest as if the model ran at `imgsz` (None: its own size): the same weights
    measured at another input size, to weigh accuracy against edge speed."""
    return manifest if imgsz is None else manifest.model_copy(update={"imgsz": imgsz})


def evaluate(model_dir: Path, data: Path, split: str = "val", out: Path | None = None,
             imgsz: int | None = None) -> Path:
    from ultralytics import YOLO

    manifest = at_size(load_manifest(model_dir), imgsz)
    data = Path(data)
    spec = read_yaml(data, LabelError)
    names = names_of(spec, data)  # also: a data.yaml that is no mapping
    root = _data_root(spec, data)
    groups, skipped = {}, []
    for origin, images in sorted(_lists_by_origin(root, spec, data, split).items()):
        readable, bad = _readable(images)
        skipped += bad
        if readable:
            groups[origin] = readable
    if not groups:
        unreadable = f" ({len(skipped)} unreadable, e.g. {skipped[0]})" if skipped else ""
        raise LabelError(f"{data}: no images in the {split} split to evaluate{unreadable}")
    if skipped:
        log.warning("%s: %d unreadable image(s) left out, e.g. %s", data, len(skipped), skipped[0])
    out = Path(out or Path("var/eval") / f"{manifest.name}-v{manifest.version}-{root.name}-{split}{f'-{imgsz}px' if imgsz else ''}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    model = _PredictOnce(YOLO(str(manifest.weights_path), task=manifest.task))
    lines = [f"# {manifest.name} v{manifest.version} on {root.name} ({split}, {manifest.imgsz} px)", ""]
    if skipped:
        lines += [f"{len(skipped)} unreadable image(s) left out: {', '.join(p.name for p in skipped[:5])}"
                  f"{', ...' if len(skipped) > 5 else ''}", ""]
    for origin, images in groups.items():
        listing = out / f"{origin}.txt"
        listing.write_text("".join(f"{p}\n" for p in images))
        sub = out / f"{origin}.yaml"
        sub.write_text(yaml.safe_dump({"path": str(root), "train": str(listing), "val": str(listing),
                                       "names": dict(enumerate(names))}))
        metrics = model.val(data=str(sub), imgsz=manifest.imgsz, batch=16, device="cpu", plots=True,
                            project=str(out), name=f"val-{origin}", exist_ok=True, verbose=False)
        for png in (out / f"val-{origin}").glob("*PR_curve.png"):
            shutil.copy(png, out / f"pr-{origin}.png")
        lines += [f"## {origin} images ({len(images)})", "", "| class | AP50 | AP50-95 |", "|---|---|---|"]
        box = metrics.box
        for i, cls in enumerate(box.ap_class_index):
            lines.append(f"| {metrics.names[int(cls)]} | {box.ap50[i]:.3f} | {box.ap[i]:.3f} |")
        lines += ["", "| issue type | image precision | image recall | images with it |", "|---|---|---|---|"]
        per_issue = sorted(_image_level(manifest, model, images, names).items())
        for issue, m in per_issue:
            lines.append(f"| {issue} | {m['precision']:.3f} | {m['recall']:.3f} | {m['positives']} |")
        lines += ["", *ranking_table([(issue, m["ranking"]) for issue, m in per_issue])]
        lines += ["", f"![PR curve, {origin}](pr-{origin}.png)", ""]
        found = mistakes(manifest, model, images, names)
        if contact_sheet(found, out / f"failures-{origin}.jpg"):
            lines += [f"{len(found)} of {len(images)} images have a missed or a false box (IoU 0.5, manifest "
                      f"thresholds); the first ones: ![failures, {origin}](failures-{origin}.jpg)", ""]
        model.forget()
    report = out / "eval.md"
    report.write_text("\n".join(lines))
    return report
