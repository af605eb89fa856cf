"""The pieces the retraining notebooks (notebooks/0*.ipynb) put together: a recipe with the
reviewed frames, fine-tuning from the deployed weights, training curves, and pictures of
where two models disagree. Kept here so the notebooks stay short and the logic is tested."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import yaml

from vision.manifest import ModelManifest

REVIEW_CLASS_MAP = {"street_vending": "vending", "clutter": "clutter", "flooding": "flooding"}


def review_counts(export_dir: Path) -> dict[str, dict[str, dict[str, int]]]:
    """Verdicts per issue type, per camera and per model version, from an export's provenance.csv."""
    counts: dict[str, dict[str, dict[str, int]]] = {"issue_type": {}, "camera": {}, "model_version": {}}
    with (export_dir / "provenance.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            for key in counts:
                bucket = counts[key].setdefault(row[key], {"confirmed": 0, "rejected": 0, "reclassified": 0})
                bucket[row["verdict"]] += 1
    return counts


def write_recipe(path: Path, name: str, classes: list[str], export_dir: Path, synthetic_images: int,
                 seed: int = 0, extra_sources: list[dict] | None = None, width: int = 640,
                 height: int = 360, base_recipe: Path | None = None, small: bool = False) -> Path:
    """A recipe: the current training data and the reviewed frames as the source `reviews`,
    split by the recipe. The current data is `base_recipe`'s sources (the deployed model's own
    recipe) when given, else synthetic scenes; `extra_sources` (such as garbage-cn) are added.
    With a base recipe its seed and splits are kept (`seed` is then unused): splits are drawn
    from the seed, so another seed would move photos the deployed model trained on into val and
    test, and the comparison would score it on its own training data. `small` caps every source
    (synthetic at `synthetic_images`, real folders at a few images per split) for quick runs."""
    splits = {"train": 0.6, "val": 0.2, "test": 0.2}
    context = None
    if base_recipe is not None:
        from datasets.recipe import load_recipe

        base = load_recipe(base_recipe)  # resolves its relative folders
        seed, splits = base.seed, dict(base.splits)
        sources = [src.model_dump(mode="json", exclude_none=True) for src in base.sources]
        # the deployed model's context classes are labelled on the reviewed frames too
        context = base.context.model_dump(mode="json") if base.context is not None else None
        if small:
            for src in sources:
                if src["kind"] == "synthetic":
                    src.update(images=min(src["images"], synthetic_images), width=width, height=height)
                elif src["kind"] == "composite":
                    src["images"] = min(src["images"], 8)
                else:
                    src["limit"] = min(src.get("limit") or 8, 8)
    else:
        sources = [{"kind": "synthetic", "name": "synth", "images": synthetic_images, "seed": seed,
                    "width": width, "height": height}]
    taken = {src["name"] for src in sources}
    for extra in extra_sources or []:
        if extra.get("name") in taken:
            raise ValueError(f"extra source {extra['name']!r} is in the current training data already "
                             f"({base_recipe or 'synthetic scenes'}); give only sources it lacks")
        extra = dict(extra)
        if extra.get("path") is not None:
            # Given relative to where the caller runs (the notebooks run from the repository
            # root); the recipe file, which would resolve it against its own folder, is elsewhere.
            extra["path"] = str(Path(extra["path"]).resolve())
        sources.append(extra)
    sources.append({"kind": "yolo", "name": "reviews", "path": str(Path(export_dir).resolve()),
                    "class_map": {k: v for k, v in REVIEW_CLASS_MAP.items() if v in classes}})
    recipe = {"name": name, "seed": seed, "classes": classes, "splits": splits, "sources": sources}
    if context is not None:
        recipe["context"] = context
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def sabotage_labels(data_yaml: Path, seed: int = 0) -> int:
    """Make the training split useless on purpose (random classes at random places), for
    tests that a worse model is not promoted. Returns the number of label files changed."""
    rng = random.Random(seed)
    names = yaml.safe_load(data_yaml.read_text())["names"]
    changed = 0
    for label in sorted((data_yaml.parent / "labels" / "train").glob("*.txt")):
        lines = [f"{rng.randrange(len(names))} {rng.uniform(.2, .8):.4f} {rng.uniform(.2, .8):.4f} "
                 f"{rng.uniform(.05, .3):.4f} {rng.uniform(.05, .3):.4f}" for _ in range(rng.randint(1, 3))]
        label.write_text("\n".join(lines) + "\n")
        changed += 1
    for cache in (data_yaml.parent / "labels").glob("*.cache"):
        cache.unlink()  # ultralytics would reuse the old labels
    return changed


def finetune(weights: Path, data: Path, epochs: int, imgsz: int, project: Path, name: str,
             batch: int = 16, use_last: bool = False, **overrides: object) -> Path:
    """Fine-tune from existing weights (the deployed model) and return the run's best.pt
    (or last.pt); `overrides` go to ultralytics' train (e.g. optimizer, lr0)."""
    from ultralytics import YOLO

    args = dict(data=str(data), epochs=epochs, imgsz=imgsz, batch=batch, device="cpu", workers=0,
                project=str(project.resolve()), name=name, exist_ok=True, plots=False, seed=0, amp=False,
                patience=max(5, epochs), verbose=False, val=True)
    from vision.train import use_every_core

    yolo = YOLO(str(weights))
    use_every_core(yolo)
    yolo.train(**{**args, **overrides})
    run = project.resolve() / name / "weights"
    return run / "last.pt" if use_last or not (run / "best.pt").exists() else run / "best.pt"


def plot_training(run_dir: Path):
    """Loss and mAP50 per epoch from the run's results.csv, as a matplotlib figure."""
    import matplotlib.pyplot as plt

    with (run_dir / "results.csv").open(newline="") as f:
        rows = [{k.strip(): v for k, v in r.items()} for r in csv.DictReader(f)]
    epochs = [int(float(r["epoch"])) for r in rows]
    fig, (loss_ax, map_ax) = plt.subplots(1, 2, figsize=(10, 3.5))
    for key in ("train/box_loss", "train/cls_loss", "val/box_loss", "val/cls_loss"):
        if key in rows[0]:
            loss_ax.plot(epochs, [float(r[key]) for r in rows], label=key)
    loss_ax.set_xlabel("epoch"), loss_ax.set_title("losses"), loss_ax.legend()
    for key in ("metrics/mAP50(B)", "metrics/mAP50-95(B)"):
        if key in rows[0]:
            map_ax.plot(epochs, [float(r[key]) for r in rows], label=key)
    map_ax.set_xlabel("epoch"), map_ax.set_title("validation"), map_ax.legend()
    fig.tight_layout()
    return fig


def issue_types_found(manifest: ModelManifest, weights: Path, images: list[Path], imgsz: int) -> dict[str, set[str]]:
    """Per image, the issue types the model reports at the manifest's thresholds."""
    from ultralytics import YOLO

    model = YOLO(str(weights))
    found: dict[str, set[str]] = {}
    for image in images:
        result = model.predict(str(image), imgsz=imgsz, conf=0.05, verbose=False, device="cpu")[0]
        types = set()
        for cls, conf in zip(result.boxes.cls.tolist(), result.boxes.conf.tolist()):
            issue = manifest.issue_type_of(int(cls))
            if issue is not None and conf >= manifest.threshold_of(int(cls)):
                types.add(issue.value)
        found[str(image)] = types
    return found


def disagreements(old: dict[str, set[str]], new: dict[str, set[str]], limit: int = 6) -> list[tuple[str, set, set]]:
    return [(img, old[img], new.get(img, set())) for img in sorted(old) if old[img] != new.get(img, set())][:limit]


def save_state(work_dir: Path, **values: object) -> None:
    """What one notebook hands to the next (paths, settings), as JSON in the work folder."""
    path = work_dir / "retrain.json"
    state = json.loads(path.read_text()) if path.exists() else {}
    state.update({k: str(v) if isinstance(v, Path) else v for k, v in values.items()})
    path.write_text(json.dumps(state, indent=1))


def load_state(work_dir: Path) -> dict:
    path = work_dir / "retrain.json"
    if not path.exists():
        raise FileNotFoundError(f"{path}: run notebooks/02_retrain.ipynb first")
    return json.loads(path.read_text())
