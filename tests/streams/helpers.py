"""Shared by the camera-ingestion tests."""

from __future__ import annotations

import time

CLIP_SECONDS, CLIP_W, CLIP_H, CLIP_FPS = 4, 640, 360, 10  # the clip the `clip` fixture makes


def wait_for(predicate, timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())
