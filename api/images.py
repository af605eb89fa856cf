"""Checking uploaded evidence images before anything is stored."""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, JpegImagePlugin, PngImagePlugin, UnidentifiedImageError

from api.schemas import EvidenceKind

FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png")}
# Opened through the two plugins directly, by magic bytes, rather than Image.open: only these
# formats are accepted anyway, and ultralytics (when imported in the same process) patches
# Image.open to fetch a HEIF plugin on any unidentified file.
_OPENERS = {b"\xff\xd8\xff": JpegImagePlugin.JpegImageFile, b"\x89PNG\r\n\x1a\n": PngImagePlugin.PngImageFile}
# Far above any camera (16384² is the frame limit of the wire contract) yet low enough that a
# crafted file cannot make Pillow allocate gigabytes.
MAX_PIXELS = 16384 * 16384


class BadImage(ValueError):
    """An uploaded part is not a usable image; `part` names the form field."""

    def __init__(self, part: str, reason: str):
        super().__init__(f"{part}: {reason}")
        self.part = part
        self.reason = reason


class TooLarge(ValueError):
    def __init__(self, part: str, limit: int):
        super().__init__(f"{part}: file larger than the limit of {limit} bytes")
        self.part = part


@dataclass(frozen=True)
class CheckedImage:
    kind: EvidenceKind
    data: bytes
    content_type: str
    ext: str
    width: int
    height: int
    sha256: str


def check_image(kind: EvidenceKind, data: bytes, max_bytes: int | None = None, field: str | None = None) -> CheckedImage:
    """Decode the whole image: a truncated or corrupt JPEG is refused, not stored. Errors name
    `field` (the form field it came in), else the evidence kind (the edge's part names)."""
    part = field or kind.value
    if max_bytes is not None and len(data) > max_bytes:
        raise TooLarge(part, max_bytes)
    if not data:
        raise BadImage(part, "empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            opener = next((cls for magic, cls in _OPENERS.items() if data.startswith(magic)), None)
            if opener is None:
                raise BadImage(part, "must be a JPEG or PNG image")
            with opener(io.BytesIO(data)) as img:
                fmt = img.format
                width, height = img.size
                if width * height > MAX_PIXELS:
                    raise BadImage(part, f"{width}x{height} pixels is more than any camera sends")
                if fmt == "JPEG":
                    # Luminance at 1/8 scale: libjpeg still entropy-decodes every component
                    # of every scan (a truncated file is still refused, as in colour) but skips
                    # most IDCT work and all colour conversion: 1.2 against 5.0 ms for a
                    # full decode of a 1280x720 frame (1.6 ms in colour at 1/8).
                    img.draft("L", (max(1, width // 8), max(1, height // 8)))
                img.load()
    except BadImage:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as exc:
        raise BadImage(part, f"not a decodable JPEG or PNG image ({exc})") from exc
    content_type, ext = FORMATS[fmt]
    return CheckedImage(kind, data, content_type, ext, width, height, hashlib.sha256(data).hexdigest())


def check_images(images: dict[EvidenceKind, bytes], max_bytes: int | None = None) -> list[CheckedImage]:
    """All parts checked before any is stored; `frame` is required, the others optional."""
    if EvidenceKind.frame not in images:
        raise BadImage(EvidenceKind.frame.value, "required: the full analysed frame (JPEG or PNG)")
    return [check_image(kind, images[kind], max_bytes) for kind in EvidenceKind if kind in images]
