"""Backends that run the exported graph directly: ONNX Runtime and OpenVINO (f32), batched.

Both share vision/yolo_io.py for letterboxing and NMS, so they differ only in the call that
runs the network. Frames of one batch that differ in size are run as separate batches.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from vision.detections import Detections
from vision.manifest import ManifestError, ModelManifest
from vision.yolo_io import decode, make_batches

log = logging.getLogger("streetwatch.vision")


def _threads(threads: int | None) -> int:
    return threads or max(1, min(4, os.cpu_count() or 1))


def _exported(manifest: ModelManifest, fmt: str) -> Path:
    path = manifest.export_path(fmt)
    if path is None or not path.is_file():
        where = manifest.path or "the model folder"
        raise ManifestError(f"{where}: no {fmt} export; run `streetwatch model export {manifest.weights_path}`")
    return path


class _GraphDetector:
    """Shared batching and decoding; subclasses implement `_run(nchw) -> (N, 4 + nc, anchors)`."""

    manifest: ModelManifest
    max_batch: int = 16

    def __init__(self, manifest: ModelManifest, floor: float):
        self.manifest, self.floor = manifest, floor

    def _run(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def detect(self, frame: np.ndarray) -> Detections:
        return self.detect_batch([frame])[0]

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        out: list[Detections | None] = [None] * len(frames)
        for idx, tensor, boxes in make_batches(frames, self.manifest.imgsz, self.max_batch):
            raw = self._run(tensor)
            for j, i in enumerate(idx):
                out[i] = decode(raw[j], boxes[j], self.floor)
        return out


def _first_line(exc: Exception) -> str:
    return ((str(exc).strip().splitlines() or [type(exc).__name__])[0])[:200]


class OnnxRuntimeDetector(_GraphDetector):
    def __init__(self, manifest: ModelManifest, floor: float, threads: int | None = None):
        import onnxruntime as ort

        super().__init__(manifest, floor)
        opts = ort.SessionOptions()
        # Intra-op threads only: one inference at a time is what the scheduler runs, and
        # inter-op parallelism does nothing for a sequential YOLO graph.
        opts.intra_op_num_threads = _threads(threads)
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # ORT's workers spin-wait after each run for the next one: on a 2-core box that burns
        # the cores the camera threads need. Frames come every few ms at most; sleep instead.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path = _exported(manifest, "onnx")
        try:
            self.session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime's own classes (InvalidProtobuf, Fail, ...)
            raise ManifestError(f"{self.path}: not a usable ONNX model ({_first_line(exc)}); "
                                f"export it again (streetwatch model export {manifest.weights_path})") from exc
        self._input = self.session.get_inputs()[0].name

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self._input: batch})[0]


class OpenVinoDetector(_GraphDetector):
    def __init__(self, manifest: ModelManifest, floor: float, threads: int | None = None):
        try:
            import openvino as ov
        except ImportError:
            raise ManifestError("detector openvino needs the openvino package (pip install openvino)") from None
        super().__init__(manifest, floor)
        xml = manifest.export_path("openvino")
        if xml is None or not xml.is_file():
            # OpenVINO reads ONNX as well; the IR only saves a conversion at start-up.
            xml = _exported(manifest, "onnx")
            log.info("no OpenVINO IR for %s; compiling %s", manifest.name, xml.name)
        self.path = xml
        core = ov.Core()
        # f32 on purpose: the bf16 default is slower on CPUs that emulate it, and f32 keeps
        # scores (and so thresholds) the same as ONNX Runtime's.
        config = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY",
                  "INFERENCE_NUM_THREADS": _threads(threads)}
        try:
            self.model = core.compile_model(core.read_model(str(xml)), "CPU", config)
        except Exception as exc:  # OpenVINO raises RuntimeError with a page of text
            raise ManifestError(f"{xml}: not a usable OpenVINO model ({_first_line(exc)}); "
                                f"export it again (streetwatch model export {manifest.weights_path})") from exc
        self._request = self.model.create_infer_request()

    def _run(self, batch: np.ndarray) -> np.ndarray:
        self._request.infer({0: batch})
        return self._request.get_output_tensor(0).data.copy()
