"""Publish trained weights as a model folder: weights, manifest thresholds from validation, card.

    streetwatch model publish runs/train/demo-v1 models/streetwatch-demo --data var/synth-demo/data.yaml
"""

from __future__ import annotations

import csv
import os
import shutil
import tempfile
from pathlib import Path

import yaml

from datasets.yolo_labels import LabelError, names_of
from vision.clip_eval import evaluate_clip
from vision.manifest import ManifestError, ModelManifest, load_manifest
from vision.model_card import write_card
from vision.train import validate
from vision.yaml_file import read_yaml

NOTES = """- Trained only on synthetic scenes: expect misses and false alarms on real street photos
  (measuring and closing that gap is the job of the dataset and evaluation work, not of this model).
- Clutter is the weakest class: piles vary most in shape and are small at a distance.
- Flooding is detected as a box around the visible water; fragmented patches give several boxes,
  which the event confirmer merges into one issue.
- Input 320 px: objects smaller than ~15 px in a 960-px frame are rarely found."""


def publish(run_dir: Path, model_dir: Path, data: Path, clips: list[Path], card: bool = True) -> Path:
    """Returns the card written, or with `card=False` (a model whose card is written from
    `streetwatch eval` reports) the manifest, after printing what the card would have shown.

    Everything is checked, validated and exported in a staging folder before the model folder
    changes, and the weights are installed last: a bad --data or run leaves the old model whole,
    and the edge never finds new weights with the old weights' thresholds or ONNX."""
    from ultralytics.utils.torch_utils import strip_optimizer

    from vision.export import export_model

    manifest, best = _check_inputs(run_dir, model_dir, data, clips)
    print(f"publishing {best}")
    weights = model_dir / manifest.weights
    weights.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".publish-", dir=weights.parent))  # same disk: os.replace is atomic
    try:
        staged = staging / weights.name
        shutil.copy(best, staged)
        strip_optimizer(str(staged))  # drops optimizer state and EMA copies: ~5 MB instead of ~26 MB
        val = validate(staged, data, manifest.imgsz)
        # the edge runs the ONNX by default: it must be these weights', not the last ones
        exports = export_model(staged, imgsz=manifest.imgsz)
        _install(model_dir, weights, staged, exports, val)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    manifest = load_manifest(model_dir)
    results = list(csv.DictReader((run_dir / "results.csv").open()))
    args = yaml.safe_load((run_dir / "args.yaml").read_text())
    training = {
        "architecture": (f"{args['model']} from scratch (no pretrained weights)" if str(args["model"]).endswith(".yaml")
                         else f"started from {Path(str(args['model'])).name}"),
        "weights chosen": best.name,
        "image size": args["imgsz"], "epochs": len(results), "batch": args["batch"],
        "device": "CPU, 2 cores", "wall time": f"{float(results[-1]['time']) / 60:.0f} min",
        "data": f"{data}",
    }
    clip_results = {}
    for clip in clips:
        r = evaluate_clip(model_dir, clip)
        found = ", ".join(f"{k}: {'missed' if v is None else f'+{v:.0f}s'}" for k, v in r.found.items()) or "no issues in clip"
        clip_results[clip.name] = f"{found}; false events: {', '.join(r.false_events) or 'none'}"
    if not card:
        for name, v in val.items():
            print(f"validation {name:12s} AP50 {v['ap50']:.3f}  AP50-95 {v['ap50_95']:.3f}  F1-optimal conf {v['f1_threshold']:.2f}")
        for name, result in clip_results.items():
            print(f"clip {name}: {result}")
        return model_dir / "manifest.yaml"
    return write_card(manifest, training, val, clip_results, NOTES)


def _check_inputs(run_dir: Path, model_dir: Path, data: Path, clips: list[Path]) -> tuple[ModelManifest, Path]:
    """The model folder's manifest and the run's best.pt, once every input is known to be there."""
    manifest = load_manifest(model_dir, weights_required=False)  # a first publish has no weights yet
    if not manifest.weights.endswith(".pt"):
        raise ManifestError(f"{model_dir / 'manifest.yaml'}: weights: publish installs a .pt, not {manifest.weights}")
    names_of(read_yaml(Path(data), LabelError), Path(data))  # --data: a data.yaml with class names
    # a run with out-of-domain validation (train --ood) picked its epoch on real photos of another domain
    best = Path(run_dir) / "weights" / "best_ood.pt"
    if not best.is_file():
        best = Path(run_dir) / "weights" / "best.pt"
    for needed in (best, Path(run_dir) / "results.csv", Path(run_dir) / "args.yaml"):
        if not needed.is_file():
            raise FileNotFoundError(f"{needed}: not found (is {run_dir} a finished training run?)")
    for clip in clips:
        for needed in (Path(clip), Path(clip).with_suffix(".json")):
            if not needed.is_file():
                raise FileNotFoundError(f"{needed}: not found (a clip needs its timeline .json beside it)")
    return manifest, best


def _install(model_dir: Path, weights: Path, staged: Path, exports: dict[str, Path], val: dict) -> None:
    """Move the staged exports in, then the manifest (thresholds, exports), then the weights."""
    raw = read_yaml(model_dir / "manifest.yaml", ManifestError)
    for cls in raw["classes"].values():
        if cls["name"] in val:
            cls["threshold"] = round(max(0.15, val[cls["name"]]["f1_threshold"]), 2)
    raw["exports"] = {}
    for fmt, path in exports.items():
        # an OpenVINO IR is a folder (.xml + .bin): that folder moves
        moved = path.parent if fmt == "openvino" else path
        dest = weights.parent / moved.name
        if dest.is_dir():
            shutil.rmtree(dest)
        os.replace(moved, dest)
        named = dest / path.name if fmt == "openvino" else dest
        raw["exports"][fmt] = Path(os.path.relpath(named, model_dir)).as_posix()
    tmp = model_dir / ".manifest.yaml.new"
    tmp.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True))
    tmp.replace(model_dir / "manifest.yaml")
    os.replace(staged, weights)
