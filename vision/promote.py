"""Compare a retrained model with the deployed one and promote it only if it is not worse.

Scores are AP50 per issue type (the mean over the model classes mapped to that type), per
evaluation set (e.g. `synthetic`, `real`, `reviews`), so a model that gains on synthetic
scenes but loses on the city's own reviewed frames is not promoted.

Promotion rewrites the deployed model folder in place (the edge's config points at it, so
the edge picks the new version up on restart): the old weights and manifest move to
`history/v<old>/`, the manifest's version goes up by one, and the card gets a new entry.
"""

from __future__ import annotations

import csv
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import yaml

from datasets.yolo_labels import LabelError, names_of
from vision.manifest import ModelManifest, load_manifest
from vision.yaml_file import read_yaml

Scores = dict[str, dict[str, float]]  # evaluation set → issue type → AP50


def eval_sets(data_yaml: Path, split: str = "val", own_sets: tuple[str, ...] = ("reviews",),
              out: Path | None = None) -> dict[str, Path]:
    """One ultralytics data file per evaluation set of a built dataset's split: by origin
    (`synthetic`, `real`, from sources.csv), with sources named in `own_sets` (the city's
    reviewed frames) reported as sets of their own. Each `eval_<split>_<set>.yaml` has its
    image list beside it (same name, .txt), in `out`: by default a folder beside the dataset
    (`<dataset>-eval`), never the dataset itself, which the next build must be free to replace."""
    root = data_yaml.parent
    out = Path(out) if out is not None else root.parent / f"{root.name}-eval"
    out.mkdir(parents=True, exist_ok=True)
    data = read_yaml(data_yaml, LabelError)
    names = names_of(data, data_yaml)
    groups: dict[str, list[str]] = {}
    with (root / "sources.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            if row["split"] == split:
                name = row["source"] if row["source"] in own_sets else row["origin"]
                groups.setdefault(name, []).append(str((root / row["image"]).resolve()))
    for stale in out.glob(f"eval_{split}_*.*"):  # a set the last build had and this one lacks
        stale.unlink()
    sets = {}
    for name, images in sorted(groups.items()):
        listing = out / f"eval_{split}_{name}.txt"
        listing.write_text("\n".join(images) + "\n")
        spec = out / f"eval_{split}_{name}.yaml"
        spec.write_text(yaml.safe_dump({"path": str(root.resolve()), "train": str(listing.resolve()),
                                        "val": str(listing.resolve()), "names": dict(enumerate(names))},
                                       sort_keys=False))
        sets[name] = spec
    return sets


def score_sets(weights: Path, manifest: ModelManifest, sets: dict[str, Path], imgsz: int) -> Scores:
    """AP50 per issue type of one model on each evaluation set."""
    from vision.train import validate  # ultralytics: imported only when scoring

    return {name: issue_type_scores(manifest, validate(weights, spec, imgsz)) for name, spec in sets.items()}


def issue_type_scores(manifest: ModelManifest, per_class: dict[str, dict[str, float]]) -> dict[str, float]:
    """Mean AP50 per issue type over the manifest's classes that the evaluation measured."""
    grouped: dict[str, list[float]] = {}
    for cls in manifest.classes.values():
        if cls.issue_type is not None and cls.name in per_class:
            grouped.setdefault(cls.issue_type.value, []).append(per_class[cls.name]["ap50"])
    return {t: sum(v) / len(v) for t, v in grouped.items()}


@dataclass
class Decision:
    current: Scores
    new: Scores
    tolerance: float
    worse: list[str] = field(default_factory=list)  # "set/issue_type" where the new model loses
    better: list[str] = field(default_factory=list)

    @property
    def promote(self) -> bool:
        return not self.worse

    def table(self) -> str:
        rows = ["| evaluation set | issue type | deployed AP50 | new AP50 | change |", "|---|---|---|---|---|"]
        for set_name in sorted(set(self.current) | set(self.new)):
            for t in sorted(set(self.current.get(set_name, {})) | set(self.new.get(set_name, {}))):
                old, new = self.current.get(set_name, {}).get(t), self.new.get(set_name, {}).get(t)
                change = f"{new - old:+.3f}" if old is not None and new is not None else "—"
                rows.append(f"| {set_name} | {t} | {_fmt(old)} | {_fmt(new)} | {change} |")
        verdict = ("**promote**: not worse than the deployed model beyond the tolerance anywhere" if self.promote
                   else f"**keep the deployed model**: worse on {', '.join(self.worse)}")
        return "\n".join(rows) + f"\n\nTolerance {self.tolerance:.3f} AP50. Decision: {verdict}."


def _fmt(v: float | None) -> str:
    return "—" if v is None else f"{v:.3f}"


def decide(current: Scores, new: Scores, tolerance: float = 0.02) -> Decision:
    """Worse anywhere (beyond the tolerance), or missing a score the deployed model has → no.
    Nothing measured (an empty test split) is no as well: "not worse anywhere" must not mean
    "not compared anywhere"."""
    decision = Decision(current, new, tolerance)
    if not any(current.values()):
        decision.worse.append("(nothing measured: no test images)")
    for set_name, scores in current.items():
        for issue_type, old in scores.items():
            value = new.get(set_name, {}).get(issue_type)
            label = f"{set_name}/{issue_type}"
            if value is None or not value >= old - tolerance:  # (NaN is worse)
                decision.worse.append(label)
            elif value > old + tolerance:
                decision.better.append(label)
    return decision


def next_version(version: str) -> str:
    head, _, last = version.rpartition(".")
    if last.isdigit():
        return f"{head}.{int(last) + 1}" if head else str(int(last) + 1)
    return f"{version}.1"


def promote(model_dir: Path, new_weights: Path, decision: Decision, training: dict[str, str],
            extra_files: dict[str, Path] | None = None, thresholds: dict[str, float] | None = None) -> ModelManifest:
    """Install `new_weights` as the next version of the model in `model_dir`, with its exports
    (`vision.export.export_model`'s answer) if given. Refuses when the decision says no, so a
    notebook cell run out of order cannot promote a worse model. `thresholds` (class name →
    confidence, chosen on validation data for the new weights) replace the old weights' ones."""
    if not decision.promote:
        raise ValueError(f"not promoting: worse on {', '.join(decision.worse)}")
    manifest = load_manifest(model_dir)
    old_version = manifest.version
    history = model_dir / "history" / f"v{old_version}"
    history.mkdir(parents=True, exist_ok=True)
    shutil.copy2(model_dir / "manifest.yaml", history / "manifest.yaml")
    shutil.copy2(manifest.weights_path, history / Path(manifest.weights).name)

    weights_name = f"{manifest.name}.pt"
    tmp = model_dir / f".{weights_name}.new"
    shutil.copy2(new_weights, tmp)
    tmp.replace(model_dir / weights_name)  # the edge never sees half a file
    exports = {}
    for fmt, path in (extra_files or {}).items():
        if fmt == "openvino":  # an IR is a folder (.xml + .bin): copy the folder, point at the .xml
            dest = model_dir / path.parent.name
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(path.parent, dest)
            exports[fmt] = f"{path.parent.name}/{path.name}"
        else:
            shutil.copy2(path, model_dir / path.name)
            exports[fmt] = path.name
    raw = yaml.safe_load((model_dir / "manifest.yaml").read_text())
    raw.update(version=next_version(old_version), weights=weights_name)
    # The old weights' exports must go even when no new ones come: an edge on ONNX Runtime
    # would otherwise keep running the old model; without an export it says to make one.
    raw["exports"] = exports
    for cls in raw["classes"].values():
        if thresholds and cls["name"] in thresholds:
            cls["threshold"] = float(thresholds[cls["name"]])
    tmp_manifest = model_dir / ".manifest.yaml.new"
    tmp_manifest.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True))
    tmp_manifest.replace(model_dir / "manifest.yaml")
    new = load_manifest(model_dir)
    _append_card(model_dir, new, old_version, decision, training)
    return new


def _append_card(model_dir: Path, manifest: ModelManifest, old_version: str, decision: Decision,
                 training: dict[str, str]) -> None:
    card = model_dir / "README.md"
    text = card.read_text() if card.exists() else f"# {manifest.name}\n"
    lines = text.splitlines()
    if lines and lines[0].startswith("# "):
        lines[0] = f"# {manifest.name} v{manifest.version}"
    settings = "\n".join(f"- {k}: {v}" for k, v in training.items())
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    entry = (f"\n\n## Version {manifest.version} (promoted {when}, replaces v{old_version})\n\n"
             f"Fine-tuned from v{old_version} with the reviewers' verdicts (`streetwatch dataset export-reviews`).\n\n"
             f"{settings}\n\n{decision.table()}\n\nPrevious weights: `history/v{old_version}/`.\n")
    card.write_text("\n".join(lines) + entry)
