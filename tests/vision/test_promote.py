"""Promotion rules: not worse on any issue type and evaluation set beyond the tolerance."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
import yaml

from vision.manifest import load_manifest
from vision.promote import decide, issue_type_scores, next_version, promote

DEMO = Path(__file__).resolve().parents[2] / "models" / "streetwatch-demo"


def test_decide_needs_every_score_kept_within_tolerance():
    current = {"synthetic": {"clutter": 0.5, "flooding": 0.8}, "reviews": {"clutter": 0.4}}
    same = decide(current, {"synthetic": {"clutter": 0.49, "flooding": 0.85}, "reviews": {"clutter": 0.6}})
    assert same.promote and same.better == ["synthetic/flooding", "reviews/clutter"]
    worse = decide(current, {"synthetic": {"clutter": 0.7, "flooding": 0.8}, "reviews": {"clutter": 0.3}})
    assert not worse.promote and worse.worse == ["reviews/clutter"]
    missing = decide(current, {"synthetic": {"clutter": 0.9, "flooding": 0.9}})
    assert missing.worse == ["reviews/clutter"]
    assert "keep the deployed model" in worse.table() and "| reviews | clutter | 0.400 | 0.300 | -0.100 |" in worse.table()


def test_decide_refuses_when_nothing_was_measured_or_a_score_is_nan():
    assert not decide({}, {}).promote  # an empty test split compares nothing
    assert not decide({"synthetic": {}}, {"synthetic": {}}).promote
    nan = decide({"synthetic": {"clutter": 0.5}}, {"synthetic": {"clutter": float("nan")}})
    assert not nan.promote and nan.worse == ["synthetic/clutter"]


def test_issue_type_scores_average_the_classes_of_a_type():
    manifest = load_manifest(DEMO)
    per_class = {"vending": {"ap50": 0.9}, "clutter": {"ap50": 0.4}, "garbage_bin": {"ap50": 0.1}}
    assert issue_type_scores(manifest, per_class) == {"street_vending": 0.9, "clutter": 0.4}


def test_next_version():
    assert [next_version(v) for v in ("1", "9", "1.4", "2026a")] == ["2", "10", "1.5", "2026a.1"]


def test_promote_installs_the_next_version_and_keeps_the_old_one(tmp_path):
    model_dir = tmp_path / "model"
    shutil.copytree(DEMO, model_dir, ignore=shutil.ignore_patterns("*.onnx", "*_openvino"))
    new_weights = tmp_path / "best.pt"
    new_weights.write_bytes(b"new weights")  # promote copies files; it does not load them
    old = load_manifest(model_dir)
    scores = {"synthetic": {"clutter": 0.5}}
    with pytest.raises(ValueError, match="worse on synthetic/clutter"):
        promote(model_dir, new_weights, decide(scores, {"synthetic": {"clutter": 0.1}}), {})
    assert load_manifest(model_dir).version == old.version

    manifest = promote(model_dir, new_weights, decide(scores, {"synthetic": {"clutter": 0.6}}), {"epochs": "3"},
                       extra_files={})
    assert manifest.version == next_version(old.version)
    assert manifest.weights_path.read_bytes() == b"new weights" and manifest.exports == {}
    kept = model_dir / "history" / f"v{old.version}"
    assert yaml.safe_load((kept / "manifest.yaml").read_text())["version"] == old.version
    assert (kept / Path(old.weights).name).stat().st_size > 1_000_000
    card = (model_dir / "README.md").read_text()
    assert card.startswith(f"# streetwatch-demo v{manifest.version}") and f"replaces v{old.version}" in card
    assert "| synthetic | clutter | 0.500 | 0.600 | +0.100 |" in card
    # promoted again without exports (a quick run): the last version's must not linger
    raw = yaml.safe_load((model_dir / "manifest.yaml").read_text())
    raw["exports"] = {"onnx": "stale.onnx"}
    (model_dir / "manifest.yaml").write_text(yaml.safe_dump(raw))
    again = promote(model_dir, new_weights, decide(scores, {"synthetic": {"clutter": 0.6}}), {},
                    thresholds={"clutter": 0.42})
    assert again.exports == {}
    assert again.threshold_of(1) == 0.42 and again.threshold_of(0) == old.threshold_of(0)  # only those given


def test_retrain_recipe_starts_from_the_deployed_models_recipe(tmp_path):
    """Notebook 2's recipe: the deployed model's own sources (folders resolved, capped in
    SMALL mode) plus the reviewed frames."""
    import yaml

    from datasets.recipe import load_recipe
    from tests.datasets.test_recipe import GOOD_LABELS, make_yolo_source, write_recipe as write_base
    from vision.retrain import write_recipe

    make_yolo_source(tmp_path / "src", GOOD_LABELS)
    base = write_base(tmp_path)
    (tmp_path / "reviews" / "images").mkdir(parents=True)
    (tmp_path / "reviews" / "data.yaml").write_text(yaml.safe_dump({"names": {0: "street_vending", 1: "clutter", 2: "flooding"}}))
    out = write_recipe(tmp_path / "work" / "recipe.yaml", "r", ["vending", "clutter", "flooding", "garbage_bin"],
                       tmp_path / "reviews", 2, base_recipe=base, small=True)
    recipe = load_recipe(out)
    names = [s.name for s in recipe.sources]
    assert names == ["synth", "real", "reviews"]
    assert recipe.sources[0].images == 2 and recipe.sources[1].limit == 8
    assert recipe.sources[1].path == (tmp_path / "src").resolve()


def test_extra_sources_resolve_from_where_the_notebook_runs_and_may_not_repeat_one(tmp_path, monkeypatch):
    """The notebook's example (a path from the repository root) was resolved against the work
    folder the recipe is written to, and a source the deployed recipe has already was taken twice."""
    import pytest
    import yaml

    from datasets.recipe import load_recipe
    from tests.datasets.test_recipe import GOOD_LABELS, make_yolo_source, write_recipe as write_base
    from vision.retrain import write_recipe

    make_yolo_source(tmp_path / "data" / "extra", GOOD_LABELS)
    (tmp_path / "reviews" / "images").mkdir(parents=True)
    (tmp_path / "reviews" / "data.yaml").write_text(yaml.safe_dump({"names": {0: "street_vending"}}))
    monkeypatch.chdir(tmp_path)  # as the notebook does: relative paths are from here
    extra = {"kind": "yolo", "name": "extra", "path": "data/extra", "class_map": {"garbage": "clutter"}}
    classes = ["vending", "clutter", "flooding", "garbage_bin"]
    out = write_recipe(tmp_path / "work" / "recipe.yaml", "r", classes, tmp_path / "reviews", 2, extra_sources=[extra])
    assert load_recipe(out).sources[1].path == (tmp_path / "data" / "extra").resolve()
    make_yolo_source(tmp_path / "src", GOOD_LABELS)
    with pytest.raises(ValueError, match="'real' is in the current training data already"):
        write_recipe(tmp_path / "work" / "r2.yaml", "r", classes, tmp_path / "reviews", 2, base_recipe=write_base(tmp_path),
                     extra_sources=[{**extra, "name": "real"}])


def test_retrain_recipe_keeps_the_base_recipes_seed_and_splits(tmp_path):
    """Splits are drawn from the seed: the notebook's own seed (1000) and shares put photos the
    deployed model trained on into the retrain's val and test, where it was scored on them."""
    from datasets.build import build_dataset
    from datasets.recipe import load_recipe
    from tests.datasets.test_recipe import GOOD_LABELS, make_yolo_source, write_recipe as write_base
    from vision.retrain import write_recipe

    make_yolo_source(tmp_path / "src", {f"p{i}": GOOD_LABELS["a"] for i in range(12)})
    base = write_base(tmp_path, splits={"train": 0.7, "val": 0.3, "test": 0.0})
    (tmp_path / "reviews" / "images").mkdir(parents=True)
    (tmp_path / "reviews" / "data.yaml").write_text(
        yaml.safe_dump({"names": {0: "street_vending", 1: "clutter", 2: "flooding"}}))
    out = write_recipe(tmp_path / "work" / "recipe.yaml", "r", ["vending", "clutter", "flooding", "garbage_bin"],
                       tmp_path / "reviews", 2, seed=1000, base_recipe=base)
    retrain = load_recipe(out)
    assert retrain.seed == 3 and retrain.splits == {"train": 0.7, "val": 0.3, "test": 0.0}

    def split_of(recipe_path, folder):
        build_dataset(load_recipe(recipe_path), tmp_path / folder)
        with (tmp_path / folder / "sources.csv").open(newline="") as f:
            return {r["image"].rsplit("/", 1)[1]: r["split"] for r in csv.DictReader(f) if r["source"] == "real"}

    deployed, again = split_of(base, "deployed"), split_of(out, "retrain")
    assert deployed == again  # every photo of the deployed data stays on its side


def test_eval_sets_leave_the_dataset_free_to_be_rebuilt(tmp_path):
    """The eval lists were written into the built folder, which the next build then refused
    to replace ("not a dataset built here"): the retraining loop ran once."""
    from datasets.build import build_dataset
    from datasets.recipe import load_recipe
    from tests.datasets.test_recipe import GOOD_LABELS, make_yolo_source, write_recipe as write_base
    from vision.promote import eval_sets

    make_yolo_source(tmp_path / "src", GOOD_LABELS)
    recipe = load_recipe(write_base(tmp_path, splits={"train": 0.0, "val": 1.0, "test": 0.0}))
    data, _ = build_dataset(recipe, tmp_path / "work" / "data")
    sets = eval_sets(data, "val")
    assert sorted(sets) == ["real", "synthetic"]
    for name, spec in sets.items():
        assert spec.parent != data.parent and spec.with_suffix(".txt").is_file()
        listed = [Path(p) for p in spec.with_suffix(".txt").read_text().split()]
        assert listed and all(p.is_file() and p.parent.parent.parent == data.parent for p in listed)
        assert yaml.safe_load(spec.read_text())["names"][1] == "clutter"
    build_dataset(recipe, tmp_path / "work" / "data")  # the second round of the loop


def test_retrain_recipe_keeps_the_deployed_recipes_composites_and_context_classes(tmp_path):
    """streetwatch-v3's recipe has a composite source and context labels: a SMALL retrain recipe
    capped the composite with `limit` (a field it does not have) and dropped the context."""
    import yaml

    from datasets.recipe import load_recipe
    from tests.datasets.test_recipe import GOOD_LABELS, make_yolo_source, write_recipe as write_base
    from vision.retrain import write_recipe

    weights = Path(__file__).resolve().parents[2].parent / "shared" / "weights" / "yolov5n-coco" / "yolov5n.pt"
    make_yolo_source(tmp_path / "src", GOOD_LABELS)
    classes = ["vending", "clutter", "flooding", "garbage_bin", "person"]
    base = write_base(tmp_path, classes=classes, sources=[
        {"kind": "yolo", "name": "real", "path": "src", "class_map": {"garbage": "clutter"}},
        {"kind": "composite", "name": "street", "of": "real", "images": 500}],
        context={"weights": str(weights), "classes": {"person": "person"}})
    (tmp_path / "reviews" / "images").mkdir(parents=True)
    (tmp_path / "reviews" / "data.yaml").write_text(yaml.safe_dump({"names": {0: "street_vending", 1: "clutter"}}))
    out = write_recipe(tmp_path / "work" / "recipe.yaml", "r", classes, tmp_path / "reviews", 2,
                       base_recipe=base, small=True)
    recipe = load_recipe(out)
    assert [s.name for s in recipe.sources] == ["real", "street", "reviews"] and recipe.sources[1].images == 8
    assert recipe.context is not None and recipe.context.classes == {"person": "person"}
    assert recipe.context.weights.resolve() == weights.resolve()  # ../shared may be a link
