"""Publish trained weights as a model folder: weights, manifest thresholds from validation, card.

    streetwatch model publish runs/train/demo-v1 models/streetwatch-demo --data var/synth-demo/data.yaml
"""

from __future__ import annotations

import csv
import shutil
import tempfile
from pathlib import Path

import yaml

from vision.clip_eval import evaluate_clip
from vision.manifest import load_manifest
from vision.model_card import write_card
from vision.train import validate

NOTES = """- Trained only on synthetic scenes: expect misses and false alarms on real street photos
  (measuring and closing that gap is the job of the dataset and evaluation work, not of this model).
- Clutter is the weakest class: piles vary most in shape and are small at a distance.
- Flooding is detected as a box around the visible water; fragmented patches give several boxes,
  which the event confirmer merges into one issue.
- Input 320 px: objects smaller than ~15 px in a 960-px frame are rarely found."""


def publish(run_dir: Path, model_dir: Path, data: Path, clips: list[Path], card: bool = True) -> Path:
    """Returns the card written, or with `card=False` (a model whose card is written from
    `streetwatch eval` reports) the manifest, after printing what the card would have shown."""
    from ultralytics.utils.torch_utils import strip_optimizer

    manifest_path = model_dir / "manifest.yaml"
    raw = yaml.safe_load(manifest_path.read_text())
    weights = model_dir / raw["weights"]
    with tempfile.TemporaryDirectory() as tmp:
        stripped = Path(tmp) / "best.pt"
        shutil.copy(run_dir / "weights" / "best.pt", stripped)
        strip_optimizer(str(stripped))  # drops optimizer state and EMA copies: ~5 MB instead of ~26 MB
        shutil.copy(stripped, weights)
    val = validate(weights, data, int(raw["imgsz"]))
    for cls in raw["classes"].values():
        if cls["name"] in val:
            cls["threshold"] = round(max(0.15, val[cls["name"]]["f1_threshold"]), 2)
    manifest_path.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True))
    from vision.export import export_model

    export_model(weights)  # the edge runs the ONNX by default: it must be these weights', not the last ones
    manifest = load_manifest(model_dir)
    results = list(csv.DictReader((run_dir / "results.csv").open()))
    args = yaml.safe_load((run_dir / "args.yaml").read_text())
    training = {
        "architecture": f"{args['model']} from scratch (no pretrained weights)",
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
        return manifest_path
    return write_card(manifest, training, val, clip_results, NOTES)
