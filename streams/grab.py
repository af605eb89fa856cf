"""What one snapshot grab can go wrong with, and the JPEG check shared by the grabbers.

Each failure has a `reason` (the label counted in /metrics) and a `kind`:

* `missed`: no picture came (no answer, connection refused, no keyframe within the GOP
  limit). Retried; after two misses in a row the camera is `stalled`
  (streams/snapshot_scheduler.py).
* `refused`: the camera answered, but not with a picture: a 401 after a password change, a
  404, an HTML login page, an empty body, a JPEG that does not decode. The camera is
  `failed` at once: a human has to look (it is still retried, with backoff).
"""

from __future__ import annotations

from typing import Literal, Protocol

import cv2
import numpy as np

REASONS = ("timeout", "unreachable", "no_keyframe", "unauthorized", "http_status", "not_jpeg", "empty",
           "undecodable", "rtsp_refused", "error")
Kind = Literal["missed", "refused"]
MAX_JPEG_BYTES = 20 * 2**20  # an 8K JPEG at high quality is under 10 MB


class GrabError(Exception):
    def __init__(self, reason: str, kind: Kind, message: str):
        super().__init__(message)
        assert reason in REASONS, reason
        self.reason, self.kind = reason, kind


class Grabber(Protocol):
    """One camera's picture source. `grab()` returns a BGR image or raises GrabError, and never
    blocks past its own timeouts."""

    def grab(self) -> np.ndarray: ...

    def close(self) -> None: ...


def decode_jpeg(body: bytes, content_type: str | None, where: str) -> np.ndarray:
    """The image of a snapshot answer, or a GrabError that says what came instead."""
    ctype = (content_type or "").split(";")[0].strip().lower()
    if not body:
        raise GrabError("empty", "refused", f"{where}: empty answer ({ctype or 'no content type'}), not a JPEG")
    if not body.startswith(b"\xff\xd8"):
        head = body[:60].decode("latin-1").strip().replace("\n", " ")
        what = ctype or "no content type"
        hint = " (a login or error page? check the snapshot URL)" if "html" in ctype or head.startswith("<") else ""
        raise GrabError("not_jpeg", "refused", f"{where}: answered {what}, {len(body)} bytes, not a JPEG{hint}: "
                                               f"{head[:40]!r}")
    image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise GrabError("undecodable", "refused", f"{where}: a JPEG of {len(body)} bytes that does not decode")
    if b"\xff\xd9" not in body[-64:]:
        # libjpeg fills a cut-off picture with grey and returns it: half a street is no evidence.
        raise GrabError("undecodable", "refused", f"{where}: a JPEG cut off after {len(body)} bytes (no end marker)")
    return image
