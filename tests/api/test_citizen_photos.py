"""Citizen photos are kept and published redacted (issue 19, items 2 and 5): no EXIF (GPS, names,
e-mail, camera), orientation applied, faces blurred, and object keys that do not carry the
tracking id (it opens the report's progress, and keys end up in public media URLs)."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from api.evidence_store import make_store
from tests.api.factories import jpeg, stored_objects

# Zidane's face in ultralytics' bundled 1280x720 photo (tests/vision/test_privacy.py)
FACE = (930, 120, 1050, 240)


@pytest.fixture(scope="module")
def people() -> bytes:
    spec = importlib.util.find_spec("ultralytics")  # its assets only: torch is not imported
    assert spec is not None and spec.origin is not None
    return (Path(spec.origin).parent / "assets" / "zidane.jpg").read_bytes()


def with_exif(photo: bytes, orientation: int = 1) -> bytes:
    img = Image.open(io.BytesIO(photo))
    exif = Image.Exif()
    exif[0x013B] = "Wang Fang"  # Artist
    exif[0x8298] = "(c) wang.fang@example.cn"  # Copyright
    exif[0x010F], exif[0x0110] = "PhoneMaker", "Model X12"
    exif[0x0112] = orientation
    exif[0x8825] = {1: "N", 2: (39.0, 54.0, 27.0), 3: "E", 4: (116.0, 23.0, 17.0)}  # GPS: Beijing, not the report's place
    out = io.BytesIO()
    img.save(out, "JPEG", quality=92, exif=exif)
    return out.getvalue()


def _report(client, photo: bytes):
    resp = client.post("/api/v1/reports", data={"issue_type": "clutter", "lat": 31.2, "lon": 121.4},
                       files={"photo": ("p.jpg", photo, "image/jpeg")}, headers={"Authorization": ""})
    assert resp.status_code == 201, resp.text
    return resp.json()["tracking_id"]


def _sharpness(img: Image.Image, box) -> float:
    """Detail in a region: the mean difference between neighbouring pixels."""
    gray = np.asarray(img.convert("L").crop(box), dtype=float)
    return float(np.abs(np.diff(gray, axis=0)).mean() + np.abs(np.diff(gray, axis=1)).mean())


def test_a_citizen_photo_is_kept_without_metadata_and_with_faces_blurred(client, backend, people):
    upload = with_exif(people)
    assert b"wang.fang@example.cn" in upload and Image.open(io.BytesIO(upload)).getexif()
    tracking = _report(client, upload)
    (key,) = stored_objects(backend)
    kept_bytes = make_store(backend).get(key)
    kept = Image.open(io.BytesIO(kept_bytes))
    assert not kept.getexif() and "exif" not in kept.info and "icc_profile" not in kept.info
    for secret in (b"wang.fang", b"Wang Fang", b"PhoneMaker", b"Model X12"):
        assert secret not in kept_bytes
    assert kept.size == (1280, 720)
    original = Image.open(io.BytesIO(people))
    assert _sharpness(kept, FACE) < 0.15 * _sharpness(original, FACE)  # the face is gone
    corner = (0, 600, 200, 720)  # far from both faces: still the photo
    assert _sharpness(kept, corner) > 0.7 * _sharpness(original, corner)
    # The key names no tracking id; what reviewers and Open311 link to is this copy.
    assert tracking not in key and key.startswith("reports/")
    order = client.get("/api/v1/orders").json()["data"][0]
    (evidence,) = client.get(f"/api/v1/orders/{order['id']}").json()["evidence"]
    assert evidence["object_key"] == key and evidence["size"] == len(kept_bytes)
    assert (evidence["width"], evidence["height"]) == (1280, 720)


def test_the_orientation_is_applied_not_kept(client, backend):
    # Orientation 6: the camera held upright; the pixels lie on their side.
    _report(client, with_exif(jpeg(size=(320, 240)), orientation=6))
    (key,) = stored_objects(backend)
    kept = Image.open(io.BytesIO(make_store(backend).get(key)))
    assert kept.size == (240, 320) and not kept.getexif()


def test_a_png_photo_is_kept_as_a_plain_jpeg(client, backend):
    img = Image.new("RGBA", (300, 200), (10, 200, 30, 128))
    buf = io.BytesIO()
    img.save(buf, "PNG", pnginfo=_png_text("Author", "wang.fang@example.cn"))
    _report(client, buf.getvalue())
    (key,) = stored_objects(backend)
    data = make_store(backend).get(key)
    assert key.endswith(".jpg") and Image.open(io.BytesIO(data)).format == "JPEG" and b"wang.fang" not in data


def _png_text(name: str, value: str):
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text(name, value)
    return info
