"""Starting weights from an official YOLOv5 release checkpoint (`yolov5n.pt` from the v6.x/v7.0
release page): `streetwatch model init --from-yolov5 yolov5n.pt OUT.pt`.

The release file is a pickle of the yolov5 repository's own classes (`models.yolo.Model`,
`models.common.C3`, ...). We do not have, nor want to run, that code: the unpickler below maps
every yolov5 class to an empty `nn.Module`, so only tensors and plain attributes come out.

Ultralytics' `yolov5{n,s,m,l,x}.yaml` ("YOLOv5u") has the same backbone and neck, layer for
layer and tensor for tensor (layers 0..23), and an anchor-free head (layer 24) in place of the
anchor head. So the backbone and neck are copied exactly and ultralytics' fresh head is kept;
the trainer then builds the head for the dataset's classes. The anchor head itself is not lost:
`vision/coco_labeller.py` runs it to label people, vehicles and furniture as context classes.
"""

from __future__ import annotations

import hashlib
import pickle
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# (depth_multiple, width_multiple) → the scale letter of ultralytics' yolov5 yaml
SCALES = {(0.33, 0.25): "n", (0.33, 0.5): "s", (0.67, 0.75): "m", (1.0, 1.0): "l", (1.33, 1.25): "x"}
YOLOV5_PACKAGES = ("models", "utils")  # the yolov5 repository's top-level packages


class Yolov5ImportError(ValueError):
    """str() is one line saying what is wrong with the checkpoint."""


@dataclass
class Yolov5Checkpoint:
    path: Path
    sha256: str
    state: dict[str, Any]          # name → tensor, as the yolov5 model's state_dict
    names: list[str]
    scale: str                     # n, s, m, l or x
    anchors: Any                   # (3, 3, 2) tensor, in grid cells of each level
    strides: list[float]
    meta: dict[str, Any] = field(default_factory=dict)  # date, epoch, ... of the release

    @property
    def head_index(self) -> int:
        return max(int(k.split(".")[1]) for k in self.state)


def _stub_pickle() -> types.ModuleType:
    """A `pickle` look-alike whose Unpickler turns yolov5 classes into empty modules."""
    import torch.nn as nn

    made: dict[str, type] = {}

    class Unpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str):  # noqa: ANN201 (pickle's signature)
            if module.split(".")[0] in YOLOV5_PACKAGES:
                key = f"{module}.{name}"
                made.setdefault(key, type(name, (nn.Module,), {"__module__": f"yolov5_stub.{module}"}))
                return made[key]
            return super().find_class(module, name)

    stub = types.ModuleType("yolov5_stub_pickle")
    stub.__dict__.update({k: getattr(pickle, k) for k in dir(pickle) if not k.startswith("__")})
    stub.Unpickler = Unpickler
    return stub


def read_yolov5(path: Path | str) -> Yolov5Checkpoint:
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such checkpoint: {path}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    try:
        ckpt = torch.load(path, map_location="cpu", pickle_module=_stub_pickle(), weights_only=False)
    except Exception as exc:  # a zip that is not torch's, a truncated file, a foreign pickle
        raise Yolov5ImportError(f"{path}: not a torch checkpoint ({type(exc).__name__}: {exc})") from exc
    model = ckpt.get("ema") or ckpt.get("model") if isinstance(ckpt, dict) else None
    cfg = getattr(model, "yaml", None)
    if model is None or not isinstance(cfg, dict) or "anchors" not in cfg:
        raise Yolov5ImportError(f"{path}: not a YOLOv5 release checkpoint (no model with an anchor head in it); "
                                "an ultralytics checkpoint can be trained from directly")
    scale = SCALES.get((round(float(cfg.get("depth_multiple", 0)), 2), round(float(cfg.get("width_multiple", 0)), 2)))
    if scale is None:
        raise Yolov5ImportError(f"{path}: depth/width {cfg.get('depth_multiple')}/{cfg.get('width_multiple')} "
                                f"is none of YOLOv5 n, s, m, l, x")
    names = model.names if isinstance(model.names, list) else [model.names[i] for i in sorted(model.names)]
    state = {k: v.float() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    head = model._modules["model"][-1] if "model" in model._modules else None
    strides = [float(s) for s in getattr(head, "stride", torch.tensor([8.0, 16.0, 32.0]))]
    anchors = getattr(head, "anchors", None)
    if anchors is None:  # older files keep them only in the state_dict
        anchors = next(v for k, v in state.items() if k.endswith(".anchors"))
    meta = {k: v for k, v in ckpt.items() if k in ("date", "epoch", "version", "license", "docs")}
    return Yolov5Checkpoint(path, digest, state, list(names), scale, anchors.float().reshape(3, 3, 2), strides, meta)


@dataclass
class InitReport:
    out: Path
    source_sha256: str
    scale: str
    copied: int        # tensors of layers 0..head-1 copied
    fresh: int         # tensors of the new head left as ultralytics initialised them
    dropped: list[str]  # source tensors not used (the anchor head)
    coco_share: float  # share of the learnable parameters that come from the checkpoint

    def summary(self) -> str:
        return (f"{self.out}: yolov5{self.scale}u starting weights, {self.copied} backbone/neck tensors from the "
                f"checkpoint (sha256 {self.source_sha256[:12]}…, {self.coco_share:.0%} of the parameters), "
                f"{self.fresh} head tensors fresh; dropped {len(self.dropped)} anchor-head tensors")


def init_from_yolov5(src: Path | str, out: Path | str, seed: int = 0) -> InitReport:
    """Write ultralytics starting weights (yolov5{scale}u, backbone and neck from `src`)."""
    import torch
    import torch.nn as nn
    from ultralytics import YOLO

    ckpt = read_yolov5(src)
    out = Path(out)
    torch.manual_seed(seed)  # the fresh head is the same on every run
    yolo = YOLO(f"yolov5{ckpt.scale}.yaml")
    model = yolo.model
    target = model.state_dict()
    head = f"model.{len(model.model) - 1}."
    if f"model.{ckpt.head_index}." != head:
        raise Yolov5ImportError(f"{src}: {ckpt.head_index + 1} layers, ultralytics' yolov5{ckpt.scale} has {len(model.model)}")
    body = [k for k in target if not k.startswith(head)]
    wrong = [k for k in body if k not in ckpt.state or ckpt.state[k].shape != target[k].shape]
    unused = [k for k in ckpt.state if not k.startswith(head) and k not in target]
    if wrong or unused:
        raise Yolov5ImportError(f"{src}: layers differ from ultralytics' yolov5{ckpt.scale}: "
                                f"{(wrong + unused)[:3]} (and {max(0, len(wrong) + len(unused) - 3)} more)")
    # eps and momentum are attributes, not tensors: the copied statistics only mean the same under the same ones
    for name, module in model.named_modules():
        if isinstance(module, nn.BatchNorm2d) and not name.startswith(head) and (module.eps, module.momentum) != (1e-3, 0.03):
            raise Yolov5ImportError(f"ultralytics' {name} has eps/momentum {module.eps}/{module.momentum}, YOLOv5 1e-3/0.03")
    copied = {k: ckpt.state[k].to(target[k].dtype) for k in body}
    model.load_state_dict(copied, strict=False)
    params = dict(model.named_parameters())
    share = sum(v.numel() for k, v in copied.items() if k in params) / sum(v.numel() for v in params.values())
    yolo.ckpt = {"pretrained_source": f"YOLOv5 release {ckpt.path.name} (sha256 {ckpt.sha256}, "
                                      f"{len(ckpt.names)} classes); layers 0-{ckpt.head_index - 1} copied by "
                                      f"streetwatch model init, head fresh"}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    yolo.save(str(tmp))
    tmp.replace(out)
    return InitReport(out, ckpt.sha256, ckpt.scale, len(copied), len(target) - len(copied),
                      sorted(k for k in ckpt.state if k.startswith(head)), share)
