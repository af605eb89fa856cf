"""Run an official YOLOv5 release checkpoint as it was trained (anchor head and all), offline,
to label context classes (people, vehicles, furniture) on training images.

Fine-tuning on a few thousand street images erases most of what COCO taught the backbone; the
labels this writes keep people, cars, umbrellas and tables in every training batch, so the
detector keeps seeing them (a parked car is not clutter; a stall is usually an umbrella or table
with a person beside it) and the edge can blur from person and vehicle boxes.

The backbone and neck run as ultralytics' yolov5 layers with the checkpoint's tensors
(vision/yolov5_import.py); the YOLOv5 head is three 1×1 convolutions decoded with the
checkpoint's anchors (YOLOv5 v6+: xy = (2σ − 0.5 + cell) · stride, wh = (2σ)² · anchor).
Used by the dataset build only, never by the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vision.yolov5_import import read_yolov5


@dataclass
class CocoBox:
    name: str
    score: float
    xyxy: tuple[float, float, float, float]  # pixels of the original image


def letterbox(img: np.ndarray, size: int, stride: int = 32) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Long side to `size`, short side padded to a multiple of `stride` (YOLOv5's rectangular
    inference, grey 114). Returns the padded image, the scale and the (left, top) padding."""
    import cv2

    h, w = img.shape[:2]
    scale = size / max(h, w)
    nh, nw = round(h * scale), round(w * scale)
    resized = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR) if (nh, nw) != (h, w) else img
    ph, pw = (-nh) % stride, (-nw) % stride
    top, left = ph // 2, pw // 2
    padded = cv2.copyMakeBorder(resized, top, ph - top, left, pw - left, cv2.BORDER_CONSTANT, value=(114, 114, 114))
    return padded, scale, (left, top)


class CocoLabeller:
    def __init__(self, weights: Path | str, imgsz: int = 640, conf: float = 0.25, iou: float = 0.45):
        import torch
        from ultralytics import YOLO

        ckpt = read_yolov5(weights)
        self.names, self.imgsz, self.conf, self.iou = ckpt.names, imgsz, conf, iou
        head = f"model.{ckpt.head_index}."
        body = YOLO(f"yolov5{ckpt.scale}.yaml").model
        body.load_state_dict({k: v for k, v in ckpt.state.items() if not k.startswith(head)}, strict=False)
        self.layers = body.model[:-1].float().eval()
        self.sources = list(body.model[-1].f)  # the layers that feed the head (17, 20, 23 for v5)
        self.convs = []
        for level in range(len(self.sources)):
            weight, bias = ckpt.state[f"{head}m.{level}.weight"], ckpt.state[f"{head}m.{level}.bias"]
            conv = torch.nn.Conv2d(weight.shape[1], weight.shape[0], 1)
            conv.weight.data, conv.bias.data = weight.float(), bias.float()
            self.convs.append(conv.eval())
        self.strides = ckpt.strides
        self.anchors = [ckpt.anchors[i] * s for i, s in enumerate(self.strides)]  # grid cells → pixels

    def _features(self, x):
        saved = []
        for m in self.layers:
            if m.f != -1:
                x = saved[m.f] if isinstance(m.f, int) else [x if j == -1 else saved[j] for j in m.f]
            x = m(x)
            saved.append(x)
        return [saved[i] for i in self.sources]

    def _decode(self, features):
        import torch

        out = []
        for conv, feat, stride, anchors in zip(self.convs, features, self.strides, self.anchors):
            b, _, h, w = feat.shape
            p = conv(feat).view(b, len(anchors), -1, h, w).permute(0, 1, 3, 4, 2).sigmoid()
            gy, gx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
            grid = torch.stack((gx, gy), -1).view(1, 1, h, w, 2).float()
            xy = (p[..., :2] * 2 - 0.5 + grid) * stride
            wh = (p[..., 2:4] * 2) ** 2 * anchors.view(1, -1, 1, 1, 2)
            out.append(torch.cat((xy, wh, p[..., 4:]), -1).view(b, -1, p.shape[-1]))
        return torch.cat(out, 1)

    def __call__(self, img_bgr: np.ndarray) -> list[CocoBox]:
        """COCO boxes of one BGR image, in its own pixels, after class-wise NMS (as detect.py)."""
        import torch
        import torchvision

        padded, scale, (left, top) = letterbox(img_bgr, self.imgsz)
        x = torch.from_numpy(np.ascontiguousarray(padded[:, :, ::-1].transpose(2, 0, 1)))[None].float() / 255
        with torch.no_grad():
            pred = self._decode(self._features(x))[0]
        pred = pred[pred[:, 4] > self.conf]
        scores = pred[:, 5:] * pred[:, 4:5]  # objectness × class probability
        idx, cls = (scores > self.conf).nonzero(as_tuple=True)
        if idx.numel() == 0:
            return []
        cx, cy, w, h = pred[idx, :4].unbind(1)
        boxes = torch.stack((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), 1)
        conf = scores[idx, cls]
        keep = torchvision.ops.batched_nms(boxes, conf, cls, self.iou)[:300]
        ih, iw = img_bgr.shape[:2]
        out = []
        for k in keep.tolist():
            x1, y1, x2, y2 = ((boxes[k] - torch.tensor([left, top, left, top])) / scale).tolist()
            out.append(CocoBox(self.names[int(cls[k])], float(conf[k]),
                               (max(0.0, x1), max(0.0, y1), min(float(iw), x2), min(float(ih), y2))))
        return out
