"""Evidence images for an event: the full frame, an annotated frame, and a crop of the issue."""

from __future__ import annotations

import cv2
import numpy as np

COLORS = {"street_vending": (0, 165, 255), "clutter": (0, 0, 230), "flooding": (230, 120, 0)}


def encode_jpeg(image: np.ndarray, quality: int = 88) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("could not encode JPEG")
    return buf.tobytes()


def annotate(frame: np.ndarray, box: tuple[float, float, float, float], label: str, issue_type: str) -> np.ndarray:
    out = frame.copy()
    color = COLORS.get(issue_type, (0, 255, 0))
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    thick = max(2, frame.shape[1] // 400)
    cv2.rectangle(out, (x1, y1), (x2, y2), color, thick)
    scale = max(0.5, frame.shape[1] / 1280)
    (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    h, w = frame.shape[:2]
    # Above the box, else below it, else (a box as tall as the frame, common for flooding)
    # inside its top; and never past the right edge.
    ty = y1 - 4 if y1 - th - base - 4 > 0 else y2 + th + 4 if y2 + th + base + 4 < h else max(y1, 0) + th + 4
    lx = max(0, min(x1, w - tw - 4))
    cv2.rectangle(out, (lx, ty - th - base), (lx + tw + 4, ty + base), color, -1)
    cv2.putText(out, label, (lx + 2, ty), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def clip_box(box: tuple[float, float, float, float], width: int, height: int) -> tuple[float, float, float, float] | None:
    """The part of the box inside a width × height frame; None if no part is."""
    x1, y1, x2, y2 = max(0.0, box[0]), max(0.0, box[1]), min(float(width), box[2]), min(float(height), box[3])
    return (x1, y1, x2, y2) if x2 > x1 and y2 > y1 else None


def crop(frame: np.ndarray, box: tuple[float, float, float, float], pad: float = 0.25, min_side: int = 64) -> np.ndarray:
    """The box with some context around it, so a reviewer sees where the issue sits."""
    h, w = frame.shape[:2]
    x1, y1, x2, y2 = box
    px, py = max((x2 - x1) * pad, min_side / 2), max((y2 - y1) * pad, min_side / 2)
    xa, ya = int(max(0, min(w - 1, x1 - px))), int(max(0, min(h - 1, y1 - py)))
    xb, yb = int(min(w, max(xa + 1, x2 + px))), int(min(h, max(ya + 1, y2 + py)))
    return frame[ya:yb, xa:xb]  # never empty: a box off the frame still gives its nearest corner


def render_evidence(frame: np.ndarray, box: tuple[float, float, float, float], label: str, issue_type: str) -> dict[str, bytes]:
    return {
        "frame": encode_jpeg(frame),
        "annotated": encode_jpeg(annotate(frame, box, label, issue_type)),
        "crop": encode_jpeg(crop(frame, box)),
    }
