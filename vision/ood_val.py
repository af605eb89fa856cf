"""Out-of-domain validation while training: after every epoch, rank real street photos that were
never trained on (image-level labels, e.g. datasets/labels/clutter-amsterdam.csv, its `val` rows)
by the epoch's best clutter score, log the image-level AP, and keep the epoch that does best on
both this and the in-domain validation as `best_ood.pt`.

Why: fine-tuning on garbage-cn's look erases what the COCO start knows about real streets within
an epoch, while garbage-cn's own mAP keeps rising (issue 16 measured 0.95 → 0.78 image AP on
citizen photos from epoch 2 to 3). mAP on the training domain cannot see that; this can.
"""

from __future__ import annotations

import csv
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from vision.image_metrics import summary

log = logging.getLogger("streetwatch.ood")

FIELDS = ["epoch", "ood_ap", "ood_recall_at_p85", "ood_recall_at_p90", "val_map50", "selection"]


@dataclass
class OodSet:
    """Photos with image-level labels for one class name of the model being trained."""
    csv_path: Path
    images: Path
    class_name: str = "clutter"
    column: str = "clutter"
    split: str = "val"

    def rows(self) -> list[tuple[Path, bool]]:
        from vision.evaluate import read_image_labels

        return read_image_labels(self.csv_path, self.images, self.column, split=self.split)


def best_scores(model, images: list[Path], class_ids: set[int], imgsz: int) -> list[float]:
    """Each image's highest score of any of `class_ids` (0 when the model sees none)."""
    out = []
    for image in images:
        boxes = model.predict(str(image), imgsz=imgsz, conf=0.01, verbose=False)[0].boxes
        out.append(max((s for c, s in zip(boxes.cls.tolist(), boxes.conf.tolist()) if int(c) in class_ids), default=0.0))
    return out


def score_weights(weights: Path, ood: OodSet, imgsz: int) -> dict[str, float]:
    from ultralytics import YOLO

    model = YOLO(str(weights))
    ids = {i for i, n in model.names.items() if n == ood.class_name}
    if not ids:
        raise ValueError(f"{weights}: no class named {ood.class_name!r} (has {sorted(model.names.values())})")
    rows = ood.rows()
    return summary(best_scores(model, [p for p, _ in rows], ids, imgsz), [t for _, t in rows])


def _best_so_far(log_file: Path) -> float:
    if not log_file.is_file():
        return float("-inf")
    return max((float(r["selection"]) for r in csv.DictReader(log_file.open())), default=float("-inf"))


def add_ood_callback(yolo, ood: OodSet, imgsz: int) -> None:
    """After each epoch's last.pt is written: score it on `ood`, append a row to ood.csv in the run
    folder, and copy it to best_ood.pt when mean(ood AP, val mAP50) is the best yet. A resumed run
    reads the best so far back from ood.csv."""
    trained: set[int] = set()

    def on_train_epoch_end(trainer) -> None:
        trained.add(trainer.epoch)

    def on_fit_epoch_end(trainer) -> None:
        # ultralytics calls this once more after the last epoch, with best.pt's val metrics and
        # the epoch counter one past the end: that is no epoch of last.pt, so it is not scored
        if trainer.epoch not in trained:
            return
        last = Path(trainer.last)
        if not last.is_file():
            return
        log_file = Path(trainer.save_dir) / "ood.csv"
        figures = score_weights(last, ood, imgsz)
        val_map50 = float(trainer.metrics.get("metrics/mAP50(B)", 0.0))
        selection = (figures["ap"] + val_map50) / 2
        best = _best_so_far(log_file)
        new = not log_file.is_file()
        with log_file.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=FIELDS)
            if new:
                writer.writeheader()
            writer.writerow({"epoch": trainer.epoch + 1, "ood_ap": round(figures["ap"], 4),
                             "ood_recall_at_p85": round(figures["recall_at_p85"], 4),
                             "ood_recall_at_p90": round(figures["recall_at_p90"], 4),
                             "val_map50": round(val_map50, 4), "selection": round(selection, 4)})
        if selection > best:
            shutil.copy(last, last.with_name("best_ood.pt"))
        log.info("epoch %d: out-of-domain %s image AP %.3f (base rate %.2f), recall %.2f at P≥0.85; val mAP50 %.3f%s",
                 trainer.epoch + 1, ood.class_name, figures["ap"], figures["base_rate"], figures["recall_at_p85"],
                 val_map50, " → best_ood.pt" if selection > best else "")

    yolo.add_callback("on_train_epoch_end", on_train_epoch_end)
    yolo.add_callback("on_fit_epoch_end", on_fit_epoch_end)
