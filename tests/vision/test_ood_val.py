"""Out-of-domain validation while training: each epoch's last.pt scored on real photos, logged,
and the epoch best on both domains kept as best_ood.pt (also across a resume)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path
from types import SimpleNamespace

from PIL import Image

from vision.ood_val import OodSet, add_ood_callback

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "models" / "streetwatch-demo" / "streetwatch-demo.pt"


class _Yolo:
    def __init__(self):
        self.callbacks = {}

    def add_callback(self, event, fn):
        self.callbacks[event] = fn


def test_each_epoch_is_logged_and_the_best_kept_across_a_resume(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, colour in enumerate([(90, 90, 90), (20, 120, 40), (200, 200, 200)]):
        Image.new("RGB", (96, 64), colour).save(photos / f"p{i}.jpg")
    labels = tmp_path / "labels.csv"
    labels.write_text("file,clutter,split,note\np0.jpg,1,val,x\np1.jpg,0,val,x\np2.jpg,1,test,never scored\n")
    run = tmp_path / "run"
    (run / "weights").mkdir(parents=True)
    last = run / "weights" / "last.pt"
    shutil.copy(DEMO, last)

    def epoch(number: int, val_map50: float) -> None:
        yolo = _Yolo()  # a new one each time, as a resumed run builds it anew
        add_ood_callback(yolo, OodSet(labels, photos), imgsz=64)
        trainer = SimpleNamespace(last=last, save_dir=run, epoch=number - 1,
                                  metrics={"metrics/mAP50(B)": val_map50})
        yolo.callbacks["on_train_epoch_end"](trainer)
        yolo.callbacks["on_fit_epoch_end"](trainer)
        return yolo, trainer

    epoch(1, 0.5)
    assert (run / "weights" / "best_ood.pt").read_bytes() == DEMO.read_bytes()
    (run / "weights" / "best_ood.pt").write_bytes(b"epoch 1")
    epoch(2, 0.1)  # same photos, same weights, worse in-domain: not better
    assert (run / "weights" / "best_ood.pt").read_bytes() == b"epoch 1"
    yolo, trainer = epoch(3, 0.9)
    assert (run / "weights" / "best_ood.pt").read_bytes() == DEMO.read_bytes()
    # ultralytics' final validation of best.pt: the epoch counter one past the end, no training
    (run / "weights" / "best_ood.pt").write_bytes(b"epoch 3")
    trainer.epoch, trainer.metrics = 3, {"metrics/mAP50(B)": 1.0}
    yolo.callbacks["on_fit_epoch_end"](trainer)
    assert (run / "weights" / "best_ood.pt").read_bytes() == b"epoch 3"
    rows = list(csv.DictReader((run / "ood.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    ap = float(rows[0]["ood_ap"])
    assert 0.5 <= ap <= 1.0 and {r["ood_ap"] for r in rows} == {rows[0]["ood_ap"]}
    assert float(rows[2]["selection"]) == round((ap + 0.9) / 2, 4)
