"""`streetwatch model publish`: nothing in the model folder changes until every input is known
good, and then the weights, thresholds and ONNX arrive together."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from streetwatch_cli import main
from tests.datasets.test_recipe import GOOD_LABELS, make_yolo_source, write_recipe

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "models" / "streetwatch-demo"


def _run(tmp_path: Path) -> Path:
    """A finished training run as ultralytics leaves it (its weights: the demo model's)."""
    run = tmp_path / "run"
    (run / "weights").mkdir(parents=True)
    shutil.copy(DEMO / "streetwatch-demo.pt", run / "weights" / "best.pt")
    (run / "results.csv").write_text("epoch,time\n1,60\n")
    (run / "args.yaml").write_text(yaml.safe_dump({"model": "yolo11n.yaml", "imgsz": 320, "batch": 4}))
    return run


def _model(tmp_path: Path, **changes) -> Path:
    model = tmp_path / "model"
    model.mkdir()
    (model / "m.pt").write_bytes(b"the deployed weights")
    (model / "m.onnx").write_bytes(b"the deployed onnx")
    raw = yaml.safe_load((DEMO / "manifest.yaml").read_text())
    raw.update(name="m", weights="m.pt", exports={"onnx": "m.onnx"}, **changes)
    raw = {k: v for k, v in raw.items() if v is not None}
    (model / "manifest.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return model


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_bad_input_leaves_the_model_folder_as_it_was(tmp_path, capsys):
    """A typo in --data left new weights beside the old thresholds and ONNX; a manifest
    without imgsz (640 by default) was a KeyError after the weights had been replaced."""
    run = _run(tmp_path)
    for changes in ({}, {"imgsz": None}):
        model = _model(tmp_path, **changes)
        before = _files(model)
        argv = ["model", "publish", str(run), str(model), "--no-card", "--data"]
        assert main([*argv, str(tmp_path / "typo" / "data.yaml")]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("streetwatch: ") and "typo" in err and "\n" not in err
        assert _files(model) == before
        (run / "weights" / "best.pt").rename(run / "weights" / "gone.pt")
        make_yolo_source(tmp_path / "src", GOOD_LABELS)
        assert main([*argv, str(tmp_path / "src" / "data.yaml")]) == 2
        assert "best.pt: not found" in capsys.readouterr().err and _files(model) == before
        (run / "weights" / "gone.pt").rename(run / "weights" / "best.pt")
        shutil.rmtree(model)
        shutil.rmtree(tmp_path / "src")


def test_publish_installs_weights_thresholds_and_their_onnx_together(tmp_path):
    from datasets.build import build_dataset
    from datasets.recipe import load_recipe
    from vision.manifest import load_manifest
    from vision.publish import publish

    make_yolo_source(tmp_path / "src", GOOD_LABELS)
    data, _ = build_dataset(load_recipe(write_recipe(tmp_path, splits={"train": 0.0, "val": 1.0, "test": 0.0})),
                            tmp_path / "ds")
    model = _model(tmp_path, imgsz=None)
    publish(_run(tmp_path), model, data, [], card=False)
    manifest = load_manifest(model)
    assert manifest.weights_path.read_bytes()[:2] == b"PK"  # a torch checkpoint, no longer the old bytes
    assert manifest.exports["onnx"] == "m.onnx"
    assert manifest.exports.get("openvino", "m_openvino/m.xml") == "m_openvino/m.xml"  # when openvino is installed
    assert all(manifest.export_path(fmt).is_file() for fmt in manifest.exports)
    assert (model / "m.onnx").stat().st_size > 1_000_000
    assert not list(model.glob(".publish-*")) and not (model / ".manifest.yaml.new").exists()


def test_a_run_with_out_of_domain_validation_publishes_the_epoch_it_chose(tmp_path):
    """train --ood keeps best_ood.pt (the epoch best on real photos of another domain and on
    val): that, not ultralytics' best.pt, is what publish installs."""
    from vision.publish import _check_inputs

    run = _run(tmp_path)
    make_yolo_source(tmp_path / "src", GOOD_LABELS)
    model = _model(tmp_path)
    assert _check_inputs(run, model, tmp_path / "src" / "data.yaml", [])[1].name == "best.pt"
    shutil.copy(run / "weights" / "best.pt", run / "weights" / "best_ood.pt")
    assert _check_inputs(run, model, tmp_path / "src" / "data.yaml", [])[1].name == "best_ood.pt"
