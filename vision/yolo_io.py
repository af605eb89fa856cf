"""YOLO input and output without ultralytics: letterboxing a batch, decoding raw output, NMS.

Used by the ONNX Runtime and OpenVINO backends, which run the exported graph directly:
ultralytics' predictor adds ~10 ms of Python per frame on a small CPU, more than the
model itself costs at 320 px.

The letterbox matches ultralytics' `predict` (rect mode): the long side is scaled to `imgsz`,
the short side padded to a multiple of the stride, centred, grey 114; so scores agree with
`YOLO.predict` on the same frame to within rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from vision.detections import Detections

STRIDE = 32
PAD_VALUE = 114


@dataclass(frozen=True)
class Letterbox:
    """How one frame was fitted into the network input: scale, then offset by the padding."""

    scale: float
    pad_x: float
    pad_y: float
    width: int  # original frame size
    height: int


def input_shape(height: int, width: int, imgsz: int, stride: int = STRIDE) -> tuple[int, int]:
    """(h, w) of the network input for a frame of this size: long side imgsz, short side
    rounded up to the stride."""
    r = min(imgsz / height, imgsz / width)
    h, w = max(1, round(height * r)), max(1, round(width * r))  # a 1×700 frame is still a frame
    return int(np.ceil(h / stride) * stride), int(np.ceil(w / stride) * stride)


def letterbox(image: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, Letterbox]:
    """BGR uint8 frame → RGB float32 CHW in [0, 1] of `shape` (h, w), with its Letterbox."""
    h0, w0 = image.shape[:2]
    th, tw = shape
    r = min(th / h0, tw / w0)
    nh, nw = max(1, round(h0 * r)), max(1, round(w0 * r))
    resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR) if (nh, nw) != (h0, w0) else image
    top, left = (th - nh) // 2, (tw - nw) // 2
    canvas = np.full((th, tw, 3), PAD_VALUE, dtype=np.uint8)
    canvas[top:top + nh, left:left + nw] = resized
    chw = canvas[:, :, ::-1].transpose(2, 0, 1)  # BGR→RGB, HWC→CHW
    return np.ascontiguousarray(chw, dtype=np.float32) * (1 / 255), Letterbox(r, left, top, w0, h0)


def make_batches(frames: Sequence[np.ndarray], imgsz: int, max_batch: int) -> list[tuple[list[int], np.ndarray, list[Letterbox]]]:
    """Group frames by input shape (a batch must share one) into tensors of at most max_batch.
    Returns (indices into frames, NCHW tensor, letterboxes)."""
    groups: dict[tuple[int, int], list[int]] = {}
    for i, frame in enumerate(frames):
        if frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"expected a BGR frame (H×W×3), got shape {frame.shape}")
        groups.setdefault(input_shape(frame.shape[0], frame.shape[1], imgsz), []).append(i)
    out = []
    for shape, idx in groups.items():
        for start in range(0, len(idx), max_batch):
            part = idx[start:start + max_batch]
            boxed = [letterbox(frames[i], shape) for i in part]
            out.append((part, np.stack([b[0] for b in boxed]), [b[1] for b in boxed]))
    return out


def decode(output: np.ndarray, box: Letterbox, conf: float, iou: float = 0.7, max_det: int = 300) -> Detections:
    """One image's raw YOLO (v8/11) output (4 + nc, anchors): cx, cy, w, h, class scores →
    Detections in the original frame's pixels, class-aware NMS at `iou` (ultralytics' default)."""
    pred = output.T  # (anchors, 4 + nc)
    scores = pred[:, 4:]
    cls = scores.argmax(axis=1)
    best = scores[np.arange(len(scores)), cls]
    keep = best >= conf
    if not keep.any():
        return Detections.empty()
    pred, cls, best = pred[keep], cls[keep], best[keep]
    xywh = pred[:, :4].astype(np.float32)
    tl = xywh[:, :2] - xywh[:, 2:] / 2
    picked = cv2.dnn.NMSBoxesBatched(np.concatenate([tl, xywh[:, 2:]], axis=1).tolist(), best.tolist(),
                                     cls.tolist(), conf, iou)
    picked = np.asarray(picked, dtype=int).reshape(-1)
    picked = picked[np.argsort(-best[picked])][:max_det]
    xyxy = np.concatenate([tl[picked], tl[picked] + xywh[picked, 2:]], axis=1)
    xyxy[:, [0, 2]] = ((xyxy[:, [0, 2]] - box.pad_x) / box.scale).clip(0, box.width)
    xyxy[:, [1, 3]] = ((xyxy[:, [1, 3]] - box.pad_y) / box.scale).clip(0, box.height)
    return Detections(xyxy, best[picked], cls[picked])
