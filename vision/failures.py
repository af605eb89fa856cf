"""Pictures of what a model gets wrong: a contact sheet of the images of one origin (real or
synthetic) where it missed a labelled box or drew one where none is, for model cards.

Labels are drawn green, the model's boxes at the manifest's thresholds red (false alarm) or
blue (a match), each tile titled with what went wrong.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from datasets.yolo_labels import label_of, read_labels
from vision.detections import box_iou
from vision.manifest import ModelManifest

TILE = (320, 200)


def _truth(image: Path, width: int, height: int, num_classes: int) -> list[tuple[int, np.ndarray]]:
    return [(b.class_id, np.array([(b.cx - b.w / 2) * width, (b.cy - b.h / 2) * height,
                                   (b.cx + b.w / 2) * width, (b.cy + b.h / 2) * height]))
            for b in read_labels(label_of(image), num_classes)]


def mistakes(manifest: ModelManifest, model, images: list[Path], names: list[str], iou: float = 0.5) -> list[dict]:
    """Per image with a mistake: its path, labelled and predicted boxes, and what went wrong."""
    by_name = {c.name: i for i, c in manifest.classes.items()}
    out = []
    for image in images:
        result = model.predict(str(image), imgsz=manifest.imgsz, conf=0.05, verbose=False)[0]
        h, w = result.orig_shape
        truth = [(by_name.get(names[c]), box) for c, box in _truth(image, w, h, len(names))]
        preds = [(int(c), np.array(b)) for c, b, s in zip(result.boxes.cls.tolist(), result.boxes.xyxy.tolist(),
                                                           result.boxes.conf.tolist())
                 if s >= manifest.threshold_of(int(c))]
        matched = [any(pc == tc and box_iou(pb[None], tb[None])[0, 0] >= iou for pc, pb in preds) for tc, tb in truth]
        false = [not any(pc == tc and box_iou(pb[None], tb[None])[0, 0] >= iou for tc, tb in truth) for pc, pb in preds]
        missed = [manifest.classes[tc].name for (tc, _), ok in zip(truth, matched) if not ok and tc is not None]
        alarms = [manifest.classes[pc].name for (pc, _), bad in zip(preds, false) if bad]
        if missed or alarms:
            out.append({"image": image, "truth": truth, "preds": preds, "false": false,
                        "what": "; ".join(filter(None, [f"missed {', '.join(missed)}" if missed else "",
                                                        f"false {', '.join(alarms)}" if alarms else ""]))})
    return out


def contact_sheet(found: list[dict], out: Path, limit: int = 12, columns: int = 4) -> Path | None:
    tiles = []
    for item in found[:limit]:
        img = cv2.imread(str(item["image"]))
        if img is None:
            continue
        for _, box in item["truth"]:
            cv2.rectangle(img, tuple(int(v) for v in box[:2]), tuple(int(v) for v in box[2:]), (0, 200, 0), 2)
        for (_, box), bad in zip(item["preds"], item["false"]):
            cv2.rectangle(img, tuple(int(v) for v in box[:2]), tuple(int(v) for v in box[2:]),
                          (0, 0, 230) if bad else (230, 120, 0), 2)
        tile = cv2.resize(img, TILE, interpolation=cv2.INTER_AREA)
        cv2.rectangle(tile, (0, 0), (TILE[0] - 1, 18), (0, 0, 0), -1)
        cv2.putText(tile, item["what"][:48], (3, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(tile)
    return tile_sheet(tiles, out, columns)


def tile_sheet(tiles: list[np.ndarray], out: Path, columns: int) -> Path | None:
    """Same-size tiles in rows of `columns` (the last row padded black), written as a JPEG."""
    if not tiles:
        return None
    tiles = tiles + [np.zeros_like(tiles[0])] * (-len(tiles) % columns)
    sheet = np.vstack([np.hstack(tiles[i:i + columns]) for i in range(0, len(tiles), columns)])
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), sheet, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return out
