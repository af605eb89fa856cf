"""Faces are blurred before evidence leaves the box (Haar cascades shipped with opencv-python 4.x)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from vision.privacy import PrivacyFilter


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    # ultralytics ships this photo of two people (faces clearly visible); nothing is downloaded
    import ultralytics

    path = Path(ultralytics.__file__).parent / "assets" / "zidane.jpg"
    if not path.is_file():
        pytest.fail("ultralytics' zidane.jpg is not installed")
    return cv2.imread(str(path))


def _sharpness(image: np.ndarray, box) -> float:
    x, y, w, h = box
    return float(cv2.Laplacian(cv2.cvtColor(image[y:y + h, x:x + w], cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())


def _overlaps(a, b) -> bool:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return min(ax + aw, bx + bw) > max(ax, bx) and min(ay + ah, by + bh) > max(ay, by)


def test_blur_removes_the_face(photo):
    pf = PrivacyFilter()
    faces = pf.find(photo)
    # Zidane's face is at about x 920-1065, y 110-255 in this 1280×720 photo
    face = next((b for b in faces if _overlaps(b, (930, 120, 120, 120))), None)
    assert face is not None, f"the cascade should find the face first; found {faces}"
    out, blurred = pf.blur(photo)
    assert out.shape == photo.shape and out is not photo
    # the face's detail is gone: edge energy drops by more than 90 %, and the pixels changed
    assert _sharpness(out, face) < 0.1 * _sharpness(photo, face)
    x, y, w, h = face
    assert np.abs(out[y:y + h, x:x + w].astype(int) - photo[y:y + h, x:x + w]).mean() > 5
    # the cascade no longer finds a face there
    assert not any(_overlaps(b, face) and b[2] > face[2] // 2 for b in pf.find(out))
    # pixels far from every blurred region are untouched, and the original frame is unchanged
    assert np.array_equal(out[-20:, :40], photo[-20:, :40]) or any(_overlaps(b, (0, 700, 40, 20)) for b in blurred)
    assert pf.find(photo)  # the input itself was not modified


def test_frame_without_faces_is_returned_unchanged():
    flat = np.full((360, 640, 3), 90, np.uint8)
    out, boxes = PrivacyFilter().blur(flat)
    assert boxes == [] and np.array_equal(out, flat)
