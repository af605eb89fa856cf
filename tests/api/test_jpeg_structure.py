"""The structure check that stands in for decoding an edge event's JPEGs (api/jpeg_structure.py):
whatever the encoders write passes, and a file cut anywhere, or with a marker where image data
should be, does not."""

from __future__ import annotations

import io
import random

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFile

from api.images import BadImage, check_image, check_images
from api.jpeg_structure import jpeg_structure_problem
from api.schemas import EvidenceKind
from tests.api.factories import jpeg


def _noise(w: int = 320, h: int = 240) -> np.ndarray:
    # Noise makes scan data with many 0xFF bytes (stuffed) for the scan's end search to pass over.
    return np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)


def _pil(img: np.ndarray, **options) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", **options)
    return buf.getvalue()


OPENCV = {
    "opencv baseline": [],
    "opencv progressive": [cv2.IMWRITE_JPEG_PROGRESSIVE, 1],
    "opencv restart markers": [cv2.IMWRITE_JPEG_RST_INTERVAL, 2],
}


def _opencv(name: str, w: int = 320, h: int = 240) -> bytes:
    return cv2.imencode(".jpg", _noise(w, h), OPENCV[name])[1].tobytes()


ENCODED = {
    **{name: lambda name=name: _opencv(name) for name in OPENCV},
    "pillow progressive": lambda: _pil(_noise(), progressive=True),
    "pillow greyscale": lambda: _pil(_noise()[:, :, 0]),
    "pillow 4:4:4 with exif": lambda: _pil(_noise(), subsampling=0, exif=Image.Exif()),
    "trailing bytes after EOI": lambda: jpeg() + b"\x00\x00camera-trailer",
}


@pytest.mark.parametrize("name", ENCODED)
def test_what_encoders_write_passes(name):
    assert jpeg_structure_problem(ENCODED[name]()) is None


@pytest.mark.parametrize("name", OPENCV)
def test_a_file_cut_anywhere_is_refused(name):
    data = _opencv(name, 96, 64)
    assert data.count(b"\xff\x00") > 10  # scan data with stuffed bytes for the end search to pass
    # Every cut from the start to the last byte: each must be caught, not only most.
    accepted = [n for n in range(len(data)) if jpeg_structure_problem(data[:n]) is None]
    assert accepted == []


def test_a_marker_inside_the_image_data_is_refused():
    data = bytearray(ENCODED["opencv baseline"]())
    eoi = len(data) - 2
    data[eoi - 500:eoi - 498] = b"\xff\xc4"  # a table marker where scan data should be
    assert "marker" in jpeg_structure_problem(bytes(data))


@pytest.mark.parametrize("cut,reason", [
    (lambda d: d[:2] + d[d.index(b"\xff\xda"):], "before its frame header"),  # headers and tables gone
    (lambda d: b"\xff\xd9" + d[2:], "start-of-image"),
    (lambda d: d[:4] + b"\x00\x01" + d[6:], "segment length"),
])
def test_broken_headers_are_refused_with_a_reason(cut, reason):
    problem = jpeg_structure_problem(cut(jpeg()))
    assert problem is not None and reason in problem


def test_what_decoding_refuses_the_structure_check_refuses_too():
    data = ENCODED["opencv baseline"]()
    header_end = data.index(b"\xff\xda") + 14
    rng = random.Random(7)
    refused = 0
    for _ in range(300):
        damaged = bytearray(data)
        for _ in range(rng.choice((1, 3, 20))):  # half the changes in the headers, half anywhere
            at = rng.randrange(2, header_end) if rng.random() < 0.5 else rng.randrange(2, len(data) - 2)
            damaged[at] = rng.randrange(256)
        try:
            check_image(EvidenceKind.report, bytes(damaged))  # decoded whole
        except BadImage:
            refused += 1
            assert jpeg_structure_problem(bytes(damaged)) is not None, damaged.hex()
    assert refused > 50  # the sample did reach the decoder's refusals


def test_edge_parts_are_not_decoded_and_photos_are(monkeypatch):
    loads = []
    real_load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: loads.append(1) or real_load(self))
    check_images({EvidenceKind.frame: jpeg(), EvidenceKind.annotated: jpeg(), EvidenceKind.crop: jpeg()})
    assert loads == []
    check_images({EvidenceKind.frame: jpeg(fmt="PNG")})  # a PNG has no such check: decoded
    check_image(EvidenceKind.report, jpeg())
    assert loads == [1, 1]


def test_an_edge_part_cut_short_is_refused_naming_it():
    with pytest.raises(BadImage, match="crop: not a whole JPEG image"):
        check_images({EvidenceKind.frame: jpeg(), EvidenceKind.crop: jpeg()[:-64]})
