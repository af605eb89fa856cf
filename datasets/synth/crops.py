"""Real garbage pasted into synthetic streets: boxes cut from the `garbage-cn` photos.

The ray-cast clutter piles are shaded boxes and ellipsoids; real rubbish has textures the
generator cannot draw. Pasting real crops, scaled by the camera's perspective and blended
at the edges, gives the model real clutter in the street geometry it will see on a pole
camera. Only the source's *train* folder is cut, and of it only the photos the build puts in
its own train split (datasets/build.py), so validation and test photos stay unseen.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from datasets.synth.objects import Box, Painter
from datasets.yolo_labels import LabelError, images_in, read_labels, source_names

CROP_CLASSES = ("garbage", "overflow")  # garbage-cn classes that are clutter; bins alone are not
MIN_CROP_PX = 48  # smaller boxes are too blurry to be worth pasting
CROP_HEIGHT_M = (0.4, 1.4)  # how tall a pasted pile stands (drawn piles reach ~1.2 m)
MAX_CROP_WIDTH_M = 2.5


@dataclass(frozen=True)
class Crop:
    image: Path
    box: tuple[int, int, int, int]  # pixels x1, y1, x2, y2 in the source photo


class CropBank:
    """Every clutter box of a YOLO folder's train split, in a fixed order (so a seed picks the
    same crop on any machine). Photos are read when a crop is pasted, a few at a time.
    `exclude`: photos of that folder a build holds out (its val and test), never cut."""

    def __init__(self, root: Path, split_folder: str = "train", classes: tuple[str, ...] = CROP_CLASSES,
                 exclude: Collection[Path] = ()):
        root = Path(root)
        names = source_names(root)
        wanted = {i for i, n in enumerate(names) if n in classes}
        if not wanted:
            raise LabelError(f"{root}: garbage_crops: none of the classes {list(classes)} in its data.yaml ({names})")
        self.root = root
        self.crops: list[Crop] = []
        for image in images_in(root / split_folder / "images"):
            if image.resolve() in exclude:
                continue
            boxes = read_labels(root / split_folder / "labels" / f"{image.stem}.txt", len(names))
            if not boxes:
                continue
            h, w = _image_size(image)
            for b in boxes:
                if b.class_id not in wanted:
                    continue
                x1, y1 = int((b.cx - b.w / 2) * w), int((b.cy - b.h / 2) * h)
                x2, y2 = int((b.cx + b.w / 2) * w), int((b.cy + b.h / 2) * h)
                if x2 - x1 >= MIN_CROP_PX and y2 - y1 >= MIN_CROP_PX:
                    self.crops.append(Crop(image, (max(0, x1), max(0, y1), min(w, x2), min(h, y2))))
        if not self.crops:
            raise LabelError(f"{root}: garbage_crops: no {'/'.join(classes)} box of at least {MIN_CROP_PX} px "
                             f"to cut in {root / split_folder / 'images'}")
        self._cache: dict[Path, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.crops)

    def pixels(self, crop: Crop) -> np.ndarray:
        if crop.image not in self._cache:
            if len(self._cache) > 64:
                self._cache.clear()
            img = cv2.imread(str(crop.image), cv2.IMREAD_COLOR)
            if img is None:
                raise LabelError(f"{crop.image}: not a readable image")
            self._cache[crop.image] = img
        x1, y1, x2, y2 = crop.box
        return self._cache[crop.image][y1:y2, x1:x2]


def _image_size(path: Path) -> tuple[int, int]:
    """(height, width) without decoding the whole photo when PIL is about; cv2 otherwise."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        img = cv2.imread(str(path), cv2.IMREAD_REDUCED_GRAYSCALE_8)
        if img is None:
            raise LabelError(f"{path}: not a readable image") from None
        return img.shape[0] * 8, img.shape[1] * 8
    try:
        with Image.open(path) as im:
            return im.height, im.width
    except (UnidentifiedImageError, OSError) as exc:
        raise LabelError(f"{path}: not a readable image") from exc


def _feathered_mask(h: int, w: int) -> np.ndarray:
    """An alpha mask that is 1 in the middle and fades at the edges, so the photo's own
    background around the rubbish melts into the street instead of showing a rectangle."""
    mask = np.zeros((h, w), np.float32)
    cv2.ellipse(mask, (w // 2, h // 2), (max(1, int(w * 0.46)), max(1, int(h * 0.46))), 0, 0, 360, 1.0, -1)
    k = max(3, (min(h, w) // 6) | 1)
    return cv2.GaussianBlur(mask, (k, k), 0)[..., None]


def draw_crop(p: Painter, rng: np.random.Generator, x: float, z: float, bank: CropBank) -> Box | None:
    """Paste one real crop standing on the ground at (x, z), 0.4–1.4 m tall and at most
    2.5 m wide (a pile of bags, a dumped sofa); returns its box."""
    crop = bank.crops[int(rng.integers(len(bank)))]
    pixels = bank.pixels(crop)
    if rng.random() < 0.5:
        pixels = pixels[:, ::-1]
    # Sized by height: sized by width, tall crops (a bin photographed upright) came out 3-5 m tall.
    aspect = pixels.shape[1] / pixels.shape[0]  # width / height
    width_m = min(MAX_CROP_WIDTH_M, float(rng.uniform(*CROP_HEIGHT_M)) * aspect)
    uv, depth = p.cam.project(np.array([[x - width_m / 2, 0.0, z], [x + width_m / 2, 0.0, z]]))
    if (depth < 0.5).any():
        return None
    w_px = float(abs(uv[1, 0] - uv[0, 0]))
    h_px = w_px / aspect
    if w_px < 8 or h_px < 8:
        return None
    x1, y2 = float(uv[:, 0].min()), float(uv[:, 1].mean()) + h_px * 0.08  # the pile's foot sits a bit below the ground line
    y1 = y2 - h_px
    H, W = p.img.shape[:2]
    ix1, iy1, ix2, iy2 = int(round(x1)), int(round(y1)), int(round(x1 + w_px)), int(round(y2))
    cx1, cy1, cx2, cy2 = max(0, ix1), max(0, iy1), min(W, ix2), min(H, iy2)
    if cx2 - cx1 < 6 or cy2 - cy1 < 6:
        return None
    patch = cv2.resize(np.ascontiguousarray(pixels), (ix2 - ix1, iy2 - iy1), interpolation=cv2.INTER_AREA).astype(np.float32)
    # daylight photos in a dusk or night street: darken them with the scene's light
    patch *= min(1.0, p.light) * float(rng.uniform(0.8, 1.05))
    alpha = _feathered_mask(iy2 - iy1, ix2 - ix1)
    sub = (slice(cy1 - iy1, cy2 - iy1), slice(cx1 - ix1, cx2 - ix1))
    region = p.img[cy1:cy2, cx1:cx2]
    p.img[cy1:cy2, cx1:cx2] = region * (1 - alpha[sub]) + patch[sub] * alpha[sub]
    # the label hugs what is visible: the fade leaves the outer ~5 % nearly transparent
    mx, my = 0.05 * (ix2 - ix1), 0.05 * (iy2 - iy1)
    p._extend(np.array([[max(cx1, ix1 + mx), max(cy1, iy1 + my)], [min(cx2, ix2 - mx), min(cy2, iy2 - my)]]))
    return p.result()
