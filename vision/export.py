"""Export trained weights for the edge: ONNX (dynamic batch and size) and OpenVINO IR in f32.

    streetwatch model export models/streetwatch-demo/streetwatch-demo.pt

writes `streetwatch-demo.onnx` and `streetwatch-demo_openvino/streetwatch-demo.xml` (+ .bin)
next to the .pt. When the .pt is the weights of a model folder's manifest, the manifest's
`exports` are updated to point at both, so `detector: onnxruntime` / `openvino` find them.

OpenVINO is converted from the ONNX file with weights kept in f32: its default fp16
compression (and bf16 inference hint) is slower on CPUs without native bf16, and f32 keeps
its scores identical to the other backends' within rounding.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import yaml

from vision.yaml_file import read_yaml

log = logging.getLogger("streetwatch.export")


class ExportError(ValueError):
    """Weights that cannot be exported; the message says which file and why."""


def export_onnx(weights: Path, imgsz: int) -> Path:
    """`weights`.pt → `weights`.onnx with dynamic batch, height and width (so frames of any
    aspect ratio can be letterboxed to their own stride-aligned size and batched)."""
    from ultralytics import YOLO  # heavy: only when exporting

    out = Path(YOLO(str(weights)).export(format="onnx", imgsz=imgsz, dynamic=True, simplify=False, verbose=False))
    target = weights.with_suffix(".onnx")
    if out.resolve() != target.resolve():
        shutil.move(out, target)
    return target


def export_openvino(onnx_path: Path) -> Path | None:
    """ONNX → OpenVINO IR (f32). Returns None, with a log line, when openvino is not installed."""
    try:
        import openvino as ov
    except ImportError:
        log.warning("openvino is not installed: skipping the OpenVINO export (pip install openvino)")
        return None
    folder = onnx_path.with_name(f"{onnx_path.stem}_openvino")
    folder.mkdir(exist_ok=True)
    xml = folder / f"{onnx_path.stem}.xml"
    model = ov.convert_model(str(onnx_path))
    ov.save_model(model, str(xml), compress_to_fp16=False)
    return xml


def _manifest_of(weights: Path) -> Path | None:
    """The model folder's manifest.yaml whose `weights` is this file: beside it, or one folder
    up (a manifest saying `weights: weights/m.pt`)."""
    for folder in (weights.parent, weights.parent.parent):
        manifest = folder / "manifest.yaml"
        if manifest.is_file():
            raw = read_yaml(manifest, ExportError)
            named = raw.get("weights") if isinstance(raw, dict) else None
            if isinstance(named, str) and (folder / named).resolve() == weights.resolve():
                return manifest
    return None


def _imgsz_of(manifest: Path | None, default: int = 640) -> int:
    raw = read_yaml(manifest, ExportError) if manifest is not None else None
    if isinstance(raw, dict) and isinstance(raw.get("imgsz"), int):
        return raw["imgsz"]
    return default


def export_model(weights: Path | str, imgsz: int | None = None, openvino: bool = True) -> dict[str, Path]:
    """Export `weights` (.pt, or a model folder whose manifest names a .pt); returns format → path."""
    weights = Path(weights)
    if weights.is_dir():
        manifest = weights / "manifest.yaml"
        if not manifest.is_file():
            raise ExportError(f"{weights}: a folder without manifest.yaml; give the .pt file")
        raw = read_yaml(manifest, ExportError)
        weights = weights / str((raw if isinstance(raw, dict) else {}).get("weights", ""))
    if not weights.is_file():
        raise ExportError(f"weights not found: {weights}")
    if weights.suffix != ".pt":
        raise ExportError(f"{weights}: export starts from PyTorch .pt weights")
    manifest = _manifest_of(weights)
    imgsz = imgsz or _imgsz_of(manifest)
    out = {"onnx": export_onnx(weights, imgsz)}
    if openvino and (xml := export_openvino(out["onnx"])) is not None:
        out["openvino"] = xml
    if manifest is not None:
        raw = read_yaml(manifest, ExportError)
        # relative to the manifest's folder, which is how ModelManifest.export_path reads them
        raw["exports"] = {fmt: p.resolve().relative_to(manifest.parent.resolve()).as_posix() for fmt, p in out.items()}
        tmp = manifest.with_name(".manifest.yaml.new")
        tmp.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True))
        tmp.replace(manifest)  # the edge never reads half a manifest
        log.info("%s: exports now %s", manifest, raw["exports"])
    return out
