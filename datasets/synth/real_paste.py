"""Real photos made to look like what street cameras see, and water pasted onto them.

The rendered streets differ from real cameras in texture, lighting and noise more than in
layout, and the only flooding the detector ever saw was rendered. Here a real photo is the
background: standing water is pasted onto its ground (reflecting the real scene above it, with
ripples, a muddy tint and darker, glossier edges), a wet road is made as a hard negative (a wet
road is not a flood: no label), and camera conditions are applied to the whole frame: night
under street lights, IR grey, headlight glare, rain streaks, droplets on the lens, low-bitrate
compression, a distant (small) view, and a night photo lit by the camera's own flash.

Everything is a pure function of the image and a numpy Generator, so a build is reproducible.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

Box = tuple[float, float, float, float]  # pixels x1, y1, x2, y2

# what composites draw from; kept as it is so that an existing recipe builds the same images
EFFECTS = ("night", "ir", "glare", "rain", "droplets", "low_bitrate", "small")
# every effect camera_effect knows: "flash" is a night photo lit by the camera's own flash, the
# look of about a third of the citizen photos the detector missed
ALL_EFFECTS = (*EFFECTS, "flash")


def read_at_most(path: Path, max_side: int) -> np.ndarray | None:
    """The photo at `path` shrunk to at most `max_side` pixels on its longer side (None when
    OpenCV cannot read it): the effects cost by the pixel, and the detector sees 320 px."""
    img = cv2.imread(str(path))
    if img is None:
        return None
    scale = min(1.0, max_side / max(img.shape[:2]))
    if scale < 1:
        img = cv2.resize(img, (round(img.shape[1] * scale), round(img.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    return img


def _blob_mask(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A puddle's outline in the lower part of the frame: a union of flat ellipses, feathered.
    Float mask in [0, 1]."""
    mask = np.zeros((h, w), np.float32)
    cx = rng.uniform(0.2, 0.8) * w
    cy = rng.uniform(0.72, 0.92) * h
    width = rng.uniform(0.25, 0.8) * w
    for _ in range(int(rng.integers(2, 5))):
        ex = cx + rng.uniform(-0.3, 0.3) * width
        ey = cy + rng.uniform(-0.05, 0.05) * h
        ax = rng.uniform(0.2, 0.5) * width
        ay = ax * rng.uniform(0.12, 0.3)  # seen at a slant: much flatter than wide
        cv2.ellipse(mask, (int(ex), int(ey)), (max(2, int(ax)), max(2, int(ay))), float(rng.uniform(-8, 8)),
                    0, 360, 1.0, -1)
    k = max(3, int(min(h, w) * 0.02) | 1)
    return cv2.GaussianBlur(mask, (k, k), 0)


def _reflection(img: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The scene above the water mirrored about the water's top edge, rippled and darkened."""
    h, w = img.shape[:2]
    rows = np.flatnonzero(mask.max(axis=1) > 0.5)
    top = int(rows[0]) if rows.size else int(h * 0.7)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    amp, freq, phase = rng.uniform(1.0, 4.0), rng.uniform(0.15, 0.5), rng.uniform(0, 6.28)
    src_y = np.clip(2 * top - ys + np.sin(ys * freq + phase) * amp * 0.5, 0, h - 1)
    src_x = np.clip(xs + np.sin(ys * freq * 1.7 + phase) * amp, 0, w - 1)
    mirrored = cv2.remap(img, src_x, src_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return cv2.GaussianBlur(mirrored, (0, 0), rng.uniform(0.8, 2.0))


def paste_water(img: np.ndarray, rng: np.random.Generator, avoid: Sequence[Box] = (),
                tries: int = 8) -> tuple[np.ndarray, Box | None]:
    """Standing water on the photo's ground, clear of the `avoid` boxes (the photo's own labelled
    objects must stay visible and labelled). Returns the image and the water's box, or the
    image unchanged and None when no place was found."""
    h, w = img.shape[:2]
    for _ in range(tries):
        mask = _blob_mask(rng, h, w)
        water = mask > 0.3
        area = max(1, int(water.sum()))
        # a puddle may touch an object's box at its edge, not lie over it
        if all(water[max(0, int(y1)):int(y2), max(0, int(x1)):int(x2)].sum() <= 0.03 * area for x1, y1, x2, y2 in avoid):
            break
    else:
        return img, None
    reflection = _reflection(img, mask, rng).astype(np.float32)
    muddy = np.array([rng.uniform(50, 80), rng.uniform(70, 100), rng.uniform(80, 120)], np.float32)
    mix = rng.uniform(0.5, 0.8)
    water = reflection * mix + muddy * (1 - mix)
    # sky and lamps mirrored in still water are brighter than the water around them
    water += np.clip(reflection - 170, 0, None) * rng.uniform(0.2, 0.6)
    # the wet rim is darker and glossier than the dry ground around it
    rim = np.clip(cv2.GaussianBlur(mask, (0, 0), max(2.0, w * 0.01)) * 1.6, 0, 1) - mask
    out = img.astype(np.float32)
    out *= 1 - 0.35 * np.clip(rim, 0, 1)[..., None]
    alpha = mask[..., None]
    out = out * (1 - alpha) + water * alpha
    ys, xs = np.nonzero(mask > 0.5)
    if ys.size < 50:
        return img, None
    return np.clip(out, 0, 255).astype(np.uint8), (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))


def wet_road(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A wet, not flooded, road: the lower frame darker and faintly mirroring what is above it.
    A hard negative: it gets no flooding label."""
    h, w = img.shape[:2]
    ground = np.zeros((h, w), np.float32)
    ground[int(h * rng.uniform(0.5, 0.7)):] = 1.0
    ground = cv2.GaussianBlur(ground, (0, 0), h * 0.05)[..., None]
    reflection = _reflection(img, ground[..., 0], rng).astype(np.float32)
    out = img.astype(np.float32)
    darker = out * rng.uniform(0.5, 0.7) + reflection * rng.uniform(0.08, 0.18)
    return np.clip(out * (1 - ground) + darker * ground, 0, 255).astype(np.uint8)


def camera_effect(img: np.ndarray, boxes: list[Box], effect: str, rng: np.random.Generator) -> tuple[np.ndarray, list[Box]]:
    """One real-camera condition applied to a frame; boxes change only for `small`."""
    h, w = img.shape[:2]
    out = img.astype(np.float32)
    if effect == "night":
        out = 255 * (out / 255) ** rng.uniform(1.8, 2.6) * rng.uniform(0.5, 0.8)
        out *= np.array([0.75, 0.95, 1.25], np.float32)  # sodium lamps: orange
        for _ in range(int(rng.integers(1, 4))):  # pools of light from street lamps
            cx, cy, r = rng.uniform(0, w), rng.uniform(0.2 * h, h), rng.uniform(0.15, 0.4) * w
            ys, xs = np.ogrid[0:h, 0:w]
            out *= 1 + 1.2 * np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * r * r))[..., None]
        out += rng.normal(0, 6, out.shape)
    elif effect == "ir":
        grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32)
        grey = 255 * (grey / 255) ** rng.uniform(0.7, 1.2) * rng.uniform(0.7, 1.1)
        out = np.repeat(grey[..., None], 3, axis=2) + rng.normal(0, 5, (h, w, 1))
    elif effect == "glare":
        for _ in range(int(rng.integers(1, 3))):
            cx, cy, r = rng.uniform(0, w), rng.uniform(0.4 * h, 0.9 * h), rng.uniform(0.03, 0.1) * w
            ys, xs = np.ogrid[0:h, 0:w]
            d2 = ((xs - cx) ** 2 + (ys - cy) ** 2) / (r * r)
            out += (255 * np.exp(-d2) + 90 * np.exp(-d2 / 16))[..., None]
    elif effect == "rain":
        streaks = np.zeros((h, w), np.float32)
        angle = rng.uniform(-0.3, 0.3)
        for _ in range(int(w * h / 600)):
            x, y, length = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.02, 0.06) * h
            cv2.line(streaks, (int(x), int(y)), (int(x + angle * length), int(y + length)), 1.0, 1)
        out = out * 0.85 + cv2.GaussianBlur(streaks, (3, 3), 0)[..., None] * 110 + 12
    elif effect == "droplets":
        blurred = cv2.GaussianBlur(img, (0, 0), max(2.0, w * 0.012)).astype(np.float32)
        mask = np.zeros((h, w), np.float32)
        for _ in range(int(rng.integers(4, 15))):
            cv2.circle(mask, (int(rng.uniform(0, w)), int(rng.uniform(0, h))), int(rng.uniform(0.02, 0.07) * w), 1.0, -1)
        mask = cv2.GaussianBlur(mask, (0, 0), 3)[..., None]
        out = out * (1 - mask) + (blurred * 1.05 + 8) * mask
    elif effect == "low_bitrate":
        scale = rng.uniform(0.35, 0.6)
        small = cv2.resize(img, (max(8, int(w * scale)), max(8, int(h * scale))), interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(8, 25))])
        out = cv2.resize(cv2.imdecode(buf, cv2.IMREAD_COLOR), (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    elif effect == "flash":
        # the flash lights what the photographer aimed at (a box, when there is one) flat and
        # bright and falls off fast with distance; everything beyond it is near black
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        cx, cy = rng.uniform(0.3, 0.7) * w, rng.uniform(0.6, 0.95) * h
        if boxes:
            x1, y1, x2, y2 = boxes[int(rng.integers(len(boxes)))]
            cx, cy = rng.uniform(x1, x2), rng.uniform(y1, y2)
        spread = rng.uniform(0.14, 0.28) * max(h, w)
        light = np.exp(-((xs - cx) ** 2 * 0.5 + (ys - cy) ** 2) / (2 * spread * spread))
        ambient = rng.uniform(0.03, 0.1)
        out = out * (ambient + (1.15 - ambient) * light)[..., None] * np.array([1.05, 1.0, 0.95], np.float32)
        out += rng.normal(0, 4, out.shape)
    elif effect == "small":
        # the same scene further away: the photo shrunk into a frame of the original size
        scale = rng.uniform(0.35, 0.6)
        sw, sh = max(8, int(w * scale)), max(8, int(h * scale))
        ox, oy = int(rng.uniform(0, w - sw)), int(rng.uniform(0, h - sh))
        canvas = cv2.resize(cv2.GaussianBlur(img, (0, 0), 8), (w, h))  # the surroundings: a blurred frame, no objects to label
        canvas = (canvas.astype(np.float32) * 0.8).astype(np.uint8)
        canvas[oy:oy + sh, ox:ox + sw] = cv2.resize(img, (sw, sh), interpolation=cv2.INTER_AREA)
        boxes = [(ox + x1 * scale, oy + y1 * scale, ox + x2 * scale, oy + y2 * scale) for x1, y1, x2, y2 in boxes]
        out = canvas.astype(np.float32)
    else:
        raise ValueError(f"unknown camera effect {effect!r}; one of {', '.join(ALL_EFFECTS)}")
    return np.clip(out, 0, 255).astype(np.uint8), boxes
