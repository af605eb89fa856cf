"""`streetwatch model export`: ONNX and OpenVINO f32 beside the .pt, the manifest pointing at
them, and every backend finding the same boxes."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from vision.detector import load_detector
from vision.export import ExportError, export_model
from vision.manifest import load_manifest

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "models" / "streetwatch-demo"


def street_frame() -> np.ndarray:
    """A frame of the demo clip's kind would need rendering; a noisy frame with a few flat
    blocks gives the model something to score, which is all an equivalence check needs."""
    rng = np.random.default_rng(3)
    frame = rng.integers(60, 200, (360, 640, 3), dtype=np.uint8)
    frame[200:330, 100:260] = (40, 90, 160)
    frame[150:300, 400:520] = (30, 30, 30)
    return frame


def test_export_writes_onnx_and_openvino_and_updates_the_manifest(tmp_path):
    import openvino  # noqa: F401  (the edge extra; a missing one fails here)
    model = tmp_path / "m"
    model.mkdir()
    shutil.copy(DEMO / "streetwatch-demo.pt", model / "w.pt")
    raw = yaml.safe_load((DEMO / "manifest.yaml").read_text())
    raw.update(weights="w.pt")
    raw.pop("exports", None)
    (model / "manifest.yaml").write_text(yaml.safe_dump(raw))

    out = export_model(model / "w.pt")
    assert out["onnx"] == model / "w.onnx" and out["onnx"].stat().st_size > 1_000_000
    assert out["openvino"].suffix == ".xml" and out["openvino"].with_suffix(".bin").is_file()
    manifest = load_manifest(model)
    assert manifest.exports == {"onnx": "w.onnx", "openvino": "w_openvino/w.xml"}

    frame = street_frame()
    found = {name: load_detector(manifest, name, threads=1).detect(frame) for name in ("onnxruntime", "openvino")}
    ort, ov = found["onnxruntime"], found["openvino"]
    assert len(ort) == len(ov)
    assert np.allclose(ort.xyxy, ov.xyxy, atol=0.5) and np.allclose(ort.confidence, ov.confidence, atol=1e-3)


def test_export_refuses_what_it_cannot_export(tmp_path):
    with pytest.raises(ExportError, match="not found"):
        export_model(tmp_path / "nope.pt")
    (tmp_path / "w.onnx").write_bytes(b"x")
    with pytest.raises(ExportError, match=r"\.pt"):
        export_model(tmp_path / "w.onnx")
    with pytest.raises(ExportError, match="manifest.yaml"):
        export_model(tmp_path)


def test_backend_without_its_export_names_the_command(tmp_path):
    from vision.manifest import ManifestError

    model = tmp_path / "m"
    model.mkdir()
    shutil.copy(DEMO / "streetwatch-demo.pt", model / "w.pt")
    raw = yaml.safe_load((DEMO / "manifest.yaml").read_text())
    raw.update(weights="w.pt")
    raw.pop("exports", None)
    (model / "manifest.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ManifestError, match="streetwatch model export"):
        load_detector(load_manifest(model), "onnxruntime")


def test_export_of_a_folder_with_weights_in_a_subfolder_points_the_manifest_at_them(tmp_path):
    """`weights: weights/m.pt`: weights/m.onnx was written but the manifest kept naming the old
    export, so the edge went on running the old model's ONNX."""
    model = tmp_path / "m"
    (model / "weights").mkdir(parents=True)
    shutil.copy(DEMO / "streetwatch-demo.pt", model / "weights" / "m.pt")
    (model / "old.onnx").write_bytes(b"the last weights' export")
    raw = yaml.safe_load((DEMO / "manifest.yaml").read_text())
    raw.update(weights="weights/m.pt", exports={"onnx": "old.onnx"})
    (model / "manifest.yaml").write_text(yaml.safe_dump(raw))

    out = export_model(model, openvino=False)
    assert out == {"onnx": model / "weights" / "m.onnx"}
    manifest = load_manifest(model)
    assert manifest.exports == {"onnx": "weights/m.onnx"} and manifest.export_path("onnx") == out["onnx"]
