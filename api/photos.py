"""Citizen photos as they are kept, shown to reviewers and published (Open311 `media_url`):
a new JPEG at a bounded size, with no metadata (the EXIF orientation is applied, everything
else, GPS and names included, is dropped) and faces and licence plates blurred as the edge
blurs camera evidence. The upload itself is never stored.

The blur is the edge's (vision/privacy.py: OpenCV's Haar cascades), imported on the first
photo rather than with the API, which must start in seconds; `opencv-python` is in the `api`
extra for it. Without it a photo is refused (503), never published unblurred.
"""

from __future__ import annotations

import hashlib
import io
import threading
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from api.images import PHOTO_MAX_PIXELS, CheckedImage, TooLarge, decode_slot, decoding, open_image
from api.schemas import EvidenceKind

# Long side of the kept copy: a reviewer sees the issue; the blur's cost grows with pixels
# (about 2 s of CPU at this size, on the report's worker thread).
MAX_SIDE = 1920
JPEG_QUALITY = 85

_filter: Any = None
_filter_lock = threading.Lock()


class RedactionUnavailable(RuntimeError):
    """Faces and plates cannot be blurred here (OpenCV missing or its cascades unreadable):
    the photo is refused with 503 rather than kept unblurred."""


def _privacy_filter() -> Any:
    global _filter
    with _filter_lock:
        if _filter is None:
            try:
                from vision.privacy import PrivacyFilter  # cv2: loaded on the first photo only
                _filter = PrivacyFilter()
            except (ImportError, RuntimeError) as exc:
                raise RedactionUnavailable(f"cannot blur faces and plates: {exc}") from exc
        return _filter


def _decoded(data: bytes, part: str) -> Image.Image:
    """The photo upright, in RGB, with its long side at most MAX_SIDE: decoded at a reduced
    scale where the format allows (JPEG: 1/2 to 1/8 inside libjpeg)."""
    with decoding(part):
        with open_image(part, data, PHOTO_MAX_PIXELS) as img:
            width, height = img.size
            scale = min(1.0, MAX_SIDE / max(width, height))
            if img.format == "JPEG" and scale < 1.0:
                img.draft("RGB", (max(1, round(width * scale)), max(1, round(height * scale))))
            with decode_slot(img.size[0] * img.size[1]):
                img.load()
                upright = ImageOps.exif_transpose(img)  # a copy: the file's metadata stays behind
                rgb = upright.convert("RGB") if upright.mode != "RGB" else upright
                rgb.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
                return rgb


def redacted_photo(data: bytes, max_bytes: int | None = None, field: str = "photo",
                   kind: EvidenceKind = EvidenceKind.report) -> CheckedImage:
    """The copy to keep of an uploaded photo. BadImage / TooLarge name `field`;
    RedactionUnavailable when the blur cannot run."""
    if max_bytes is not None and len(data) > max_bytes:
        raise TooLarge(field, max_bytes)
    privacy = _privacy_filter()
    rgb = _decoded(data, field)
    blurred, _boxes = privacy.blur(np.ascontiguousarray(np.asarray(rgb)[:, :, ::-1]))  # the cascades take BGR
    out = io.BytesIO()
    # No exif=, icc_profile= or comment: a fresh file carries nothing of the upload's metadata.
    Image.fromarray(np.ascontiguousarray(blurred[:, :, ::-1])).save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
    kept = out.getvalue()
    return CheckedImage(kind, kept, "image/jpeg", "jpg", rgb.width, rgb.height, hashlib.sha256(kept).hexdigest())
