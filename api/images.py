"""Checking uploaded evidence images before anything is stored."""

from __future__ import annotations

import hashlib
import io
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from PIL import Image, ImageFile, JpegImagePlugin, PngImagePlugin, UnidentifiedImageError

from api.jpeg_structure import jpeg_structure_problem
from api.schemas import EvidenceKind

FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png")}
# Opened through the two plugins directly, by magic bytes, rather than Image.open: only these
# formats are accepted anyway, and ultralytics (when imported in the same process) patches
# Image.open to fetch a HEIF plugin on any unidentified file.
_OPENERS = {b"\xff\xd8\xff": JpegImagePlugin.JpegImageFile, b"\x89PNG\r\n\x1a\n": PngImagePlugin.PngImageFile}
# Declared sizes are checked before a byte is decoded: a 336 KiB PNG of zeros can declare
# 9400x9400 and cost 350 MB to decode (Pillow's own bomb warning starts at 89.5 MP).
# Cameras: 8K UHD, the largest CCTV sensors; an event's frame must also be the size it states.
CAMERA_MAX_PIXELS = 7680 * 4320
# Photos people take (citizens, workers): a 24 MP phone photo; 48-200 MP sensors save 12 MP
# binned images unless told otherwise.
PHOTO_MAX_PIXELS = 24_000_000
PHOTO_KINDS = frozenset({EvidenceKind.report, EvidenceKind.resolution})
# Decodes that allocate more than this many pixels take one of a few slots, so that a burst of
# large images waits its turn instead of holding several hundred MB at once.
LARGE_DECODE_PIXELS = 4_000_000
_large_decodes = threading.BoundedSemaphore(2)


def max_pixels(kind: EvidenceKind) -> int:
    return PHOTO_MAX_PIXELS if kind in PHOTO_KINDS else CAMERA_MAX_PIXELS


@contextmanager
def decode_slot(pixels: int) -> Iterator[None]:
    """Hold one of the large-decode slots while decoding `pixels` pixels (none for small ones)."""
    if pixels <= LARGE_DECODE_PIXELS:
        yield
        return
    with _large_decodes:
        yield


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


def open_image(part: str, data: bytes, limit: int, size: tuple[int, int] | None = None) -> ImageFile.ImageFile:
    """The image's header only, nothing decoded yet: refused (BadImage) unless it is a JPEG or
    PNG of at most `limit` pixels, and of exactly `size` when one is given."""
    if not data:
        raise BadImage(part, "empty file")
    opener = next((cls for magic, cls in _OPENERS.items() if data.startswith(magic)), None)
    if opener is None:
        raise BadImage(part, "must be a JPEG or PNG image")
    try:
        img = opener(io.BytesIO(data))
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadImage(part, f"not a decodable JPEG or PNG image ({exc})") from exc
    width, height = img.size
    if size is not None and (width, height) != size:
        img.close()
        raise BadImage(part, f"is {width}x{height} but the event says {size[0]}x{size[1]} (frame_width, frame_height)")
    if width * height > limit:
        img.close()
        raise BadImage(part, f"{width}x{height} pixels is more than the limit of {limit / 1e6:.1f} megapixels")
    return img


@contextmanager
def decoding(part: str) -> Iterator[None]:
    """Decoder failures (truncated, corrupt, a bomb Pillow notices) as BadImage naming `part`."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except BadImage:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as exc:
        raise BadImage(part, f"not a decodable JPEG or PNG image ({exc})") from exc


def check_image(kind: EvidenceKind, data: bytes, max_bytes: int | None = None, field: str | None = None,
                size: tuple[int, int] | None = None, limit: int | None = None,
                structure_only: bool = False) -> CheckedImage:
    """Decode the whole image: a truncated or corrupt JPEG is refused, not stored. Errors name
    `field` (the form field it came in), else the evidence kind (the edge's part names).
    `size`: the exact size it must have; `limit`: most pixels (the kind's cap by default).
    `structure_only`: a JPEG's segments and scans are read, not decoded (api/jpeg_structure.py:
    for the edge's own frames); a PNG is decoded all the same."""
    part = field or kind.value
    if max_bytes is not None and len(data) > max_bytes:
        raise TooLarge(part, max_bytes)
    with decoding(part):
        with open_image(part, data, limit or max_pixels(kind), size) as img:
            fmt = img.format
            width, height = img.size
            if fmt == "JPEG" and structure_only:
                problem = jpeg_structure_problem(data)
                if problem is not None:
                    raise BadImage(part, f"not a whole JPEG image: {problem}")
            else:
                if fmt == "JPEG":
                    # Luminance at 1/8 scale: libjpeg still entropy-decodes every component
                    # of every scan (a truncated file is still refused, as in colour) but skips
                    # most IDCT work and all colour conversion: 1.2 against 5.0 ms for a
                    # full decode of a 1280x720 frame (1.6 ms in colour at 1/8).
                    img.draft("L", (max(1, width // 8), max(1, height // 8)))
                with decode_slot(img.size[0] * img.size[1]):
                    img.load()
    assert fmt is not None
    content_type, ext = FORMATS[fmt]
    return CheckedImage(kind, data, content_type, ext, width, height, hashlib.sha256(data).hexdigest())


def check_images(images: dict[EvidenceKind, bytes], max_bytes: int | None = None,
                 frame_size: tuple[int, int] | None = None) -> list[CheckedImage]:
    """An edge event's parts, all checked before any is stored; `frame` is required, the
    others optional. With `frame_size` (the event's), the frame must be that size and no part
    may be larger: that is known from the headers. JPEGs, the box's own encoder's output, are
    checked by their structure, not decoded (api/jpeg_structure.py says why)."""
    if EvidenceKind.frame not in images:
        raise BadImage(EvidenceKind.frame.value, "required: the full analysed frame (JPEG or PNG)")
    limit = min(CAMERA_MAX_PIXELS, frame_size[0] * frame_size[1]) if frame_size else None
    return [check_image(kind, images[kind], max_bytes, size=frame_size if kind == EvidenceKind.frame else None,
                        limit=limit, structure_only=True)
            for kind in EvidenceKind if kind in images]
