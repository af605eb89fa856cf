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


def _manifest_beside(weights: Path) -> Path | None:
    manifest = weights.parent / "manifest.yaml"
    if not manifest.is_file():
        return None
    raw = yaml.safe_load(manifest.read_text()) or {}
    if (weights.parent / str(raw.get("weights", ""))).resolve() != weights.resolve():
        return None
    return manifest


def _imgsz_of(weights: Path, default: int = 640) -> int:
    manifest = weights.parent / "manifest.yaml"
    if manifest.is_file():
        raw = yaml.safe_load(manifest.read_text()) or {}
        if isinstance(raw.get("imgsz"), int):
            return raw["imgsz"]
    return default


def export_model(weights: Path | str, imgsz: int | None = None, openvino: bool = True) -> dict[str, Path]:
    """Export `weights` (.pt, or a model folder whose manifest names a .pt); returns format → path."""
    weights = Path(weights)
    if weights.is_dir():
        manifest = weights / "manifest.yaml"
        if not manifest.is_file():
            raise ExportError(f"{weights}: a folder without manifest.yaml; give the .pt file")
        weights = weights / str((yaml.safe_load(manifest.read_text()) or {}).get("weights", ""))
    if not weights.is_file():
        raise ExportError(f"weights not found: {weights}")
    if weights.suffix != ".pt":
        raise ExportError(f"{weights}: export starts from PyTorch .pt weights")
    imgsz = imgsz or _imgsz_of(weights)
    out = {"onnx": export_onnx(weights, imgsz)}
    if openvino and (xml := export_openvino(out["onnx"])) is not None:
        out["openvino"] = xml
    manifest = _manifest_beside(weights)
    if manifest is not None:
        raw = yaml.safe_load(manifest.read_text())
        raw["exports"] = {fmt: str(p.relative_to(weights.parent)) for fmt, p in out.items()}
        manifest.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True))
        log.info("%s: exports now %s", manifest, raw["exports"])
    return out
