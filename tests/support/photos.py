"""A real photo with faces for the privacy tests: ultralytics ships zidane.jpg (two people, faces
clearly visible), so nothing is downloaded."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest


def zidane() -> np.ndarray:
    import ultralytics

    path = Path(ultralytics.__file__).parent / "assets" / "zidane.jpg"
    if not path.is_file():
        pytest.fail("ultralytics' zidane.jpg is not installed")
    return cv2.imread(str(path))
