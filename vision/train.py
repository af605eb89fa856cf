"""Train a YOLO detector from scratch with ultralytics and export it for the edge.

`model` is an architecture YAML (e.g. yolo11n.yaml: from scratch), starting weights made by
`streetwatch model init --from-yolov5` from an official COCO release checkpoint, or weights this
project trained itself (a .pt) to fine-tune from, such as the deployed model when new data
arrives. Runs are resumable: re-running with the same name continues from the run's last.pt.
`freeze` keeps the first layers (the COCO backbone: 10 for yolov5n) as they came; `ood` scores
every epoch on real photos of another domain and keeps the best epoch as best_ood.pt
(vision/ood_val.py).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vision.ood_val import OodSet

log = logging.getLogger("streetwatch.train")


def use_every_core(yolo) -> None:
    """ultralytics trains on the CPU with one thread fewer than there are cores, which on a
    2-core box is half of it (its data loading then runs in the main process anyway)."""
    import os

    import torch

    # harmless on a GPU, where these threads only run the few CPU-side ops
    yolo.add_callback("on_pretrain_routine_start", lambda trainer: torch.set_num_threads(os.cpu_count() or 1))


def train(
    data: Path,
    model: str = "yolo11n.yaml",
    epochs: int = 40,
    imgsz: int = 416,
    batch: int = 16,
    name: str = "streetwatch",
    project: Path = Path("runs/train"),
    device: str = "cpu",
    workers: int = 2,
    export: bool = True,
    freeze: int = 0,
    ood: "OodSet | None" = None,
    lr0: float | None = None,
) -> Path:
    """Train (or resume) and return the path of the best weights (best_ood.pt when `ood` is
    given, else best.pt). `lr0` fine-tunes at that fixed AdamW rate without warmup: ultralytics'
    "auto" optimizer ignores lr0, and its warmup starts biases at 0.1, which shakes a trained
    model more than a whole epoch at a low rate does. Their ONNX and OpenVINO exports (vision/export.py) sit beside them,
    ready for the edge's faster backends."""
    from ultralytics import YOLO  # heavy import kept local so the CLI starts fast

    run_dir = Path(project).resolve() / name
    last = run_dir / "weights" / "last.pt"
    if last.exists():
        log.info("resuming %s", last)
        yolo = YOLO(str(last))
        use_every_core(yolo)
        if ood is not None:
            from vision.ood_val import add_ood_callback

            add_ood_callback(yolo, ood, imgsz)
        try:
            yolo.train(resume=True)
        except AssertionError as exc:  # ultralytics refuses to resume a finished run
            log.info("not resumed: %s", exc)
    else:
        yolo = YOLO(model)
        use_every_core(yolo)
        if ood is not None:
            from vision.ood_val import add_ood_callback

            add_ood_callback(yolo, ood, imgsz)
        # ultralytics only starts from a checkpoint's weights when `pretrained` names it
        start = str(Path(model).resolve()) if str(model).endswith(".pt") else False
        rate = {} if lr0 is None else {"optimizer": "AdamW", "lr0": lr0, "warmup_epochs": 0}
        yolo.train(
            data=str(data), epochs=epochs, imgsz=imgsz, batch=batch, device=device, workers=workers,
            project=str(Path(project).resolve()), name=name, exist_ok=True, pretrained=start,
            cache="ram", plots=True, patience=max(10, epochs // 3), seed=0, deterministic=False,
            amp=False, close_mosaic=max(1, epochs // 8), freeze=freeze or None,
            **rate,
        )
    best = run_dir / "weights" / ("best_ood.pt" if ood is not None else "best.pt")
    if export:
        from vision.export import export_model

        export_model(best, imgsz=imgsz)
    return best


def validate(weights: Path, data: Path, imgsz: int) -> dict[str, dict[str, float]]:
    """Per-class AP50, AP50-95 and the confidence that maximises F1 on the validation split.

    The F1-optimal confidence is what we write into the manifest as the class threshold:
    chosen on validation data, never on the test split or the demo clip.
    """
    import numpy as np
    from ultralytics import YOLO

    metrics = YOLO(str(weights)).val(data=str(data), imgsz=imgsz, batch=16, device="cpu", plots=False, verbose=False)
    box = metrics.box
    conf_grid = np.linspace(0, 1, box.f1_curve.shape[1])
    out = {}
    for i, cls in enumerate(box.ap_class_index):
        name = metrics.names[int(cls)]
        out[name] = {"ap50": float(box.ap50[i]), "ap50_95": float(box.ap[i]),
                     "f1_threshold": float(conf_grid[int(np.argmax(box.f1_curve[i]))]),
                     "f1": float(np.max(box.f1_curve[i]))}
    return out
