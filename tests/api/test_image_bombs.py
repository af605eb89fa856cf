"""Images are refused by their declared size before anything is decoded (issue 19, item 1):
a 336 KiB PNG of zeros declaring 9400x9400 was accepted, cost 340 MB to decode and was kept."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image, ImageFile

from api.images import PHOTO_MAX_PIXELS
from api.photos import MAX_SIDE
from tests.api.factories import event_json, jpeg, nothing_stored, post, stored_objects


def png_of_zeros(width: int, height: int) -> bytes:
    """An RGBA PNG of zeros, compressed row by row as the probe made it: tiny on the wire,
    width x height x 4 bytes once decoded."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    packer = zlib.compressobj(9)
    row = b"\x00" * (1 + 4 * width)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def bomb() -> bytes:
    data = png_of_zeros(9400, 9400)
    assert len(data) < 400 * 1024
    return data


@pytest.fixture
def no_decoding(monkeypatch):
    """Fails a test that decodes a large image: the refusal must come from the header alone."""
    load = ImageFile.ImageFile.load

    def refuse_large(self, *args, **kwargs):
        assert self.size[0] * self.size[1] < 1_000_000, f"decoded a {self.size} image"
        return load(self, *args, **kwargs)

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse_large)


def _report(client, photo: bytes):
    return client.post("/api/v1/reports", data={"issue_type": "clutter", "lat": 31.2, "lon": 121.4},
                       files={"photo": ("p.png", photo, "image/png")}, headers={"Authorization": ""})


def test_a_citizen_png_bomb_is_refused_before_decoding(client, backend, bomb, no_decoding):
    resp = _report(client, bomb)
    assert resp.status_code == 422, resp.text
    (error,) = resp.json()["detail"]
    assert error["loc"] == ["body", "photo"] and "9400x9400" in error["msg"] and "megapixels" in error["msg"]
    assert nothing_stored(backend)


def test_an_edge_frame_larger_than_its_event_says_is_refused_before_decoding(client, backend, bomb, no_decoding):
    resp = post(client, event_json(), frame=bomb)  # the event says 320x240
    assert resp.status_code == 422 and "9400x9400" in resp.text, resp.text
    annotated = post(client, event_json(), frame=jpeg(), annotated=bomb)  # no part may exceed the frame
    assert annotated.status_code == 422 and annotated.json()["detail"][0]["loc"] == ["body", "annotated"]
    assert nothing_stored(backend)


def test_a_large_citizen_jpeg_is_kept_at_a_bounded_size(client, backend):
    big = jpeg(size=(4000, 3000))  # 12 MP: a phone photo, within the limit
    resp = _report(client, big)
    assert resp.status_code == 201, resp.text
    (key,) = stored_objects(backend)
    kept = Image.open(io.BytesIO(_object(backend, key)))
    assert kept.format == "JPEG" and kept.size == (MAX_SIDE, MAX_SIDE * 3 // 4)


def test_a_citizen_photo_over_the_pixel_limit_is_refused(client, backend):
    too_many = jpeg(size=(6400, 4000))  # 25.6 MP
    assert 6400 * 4000 > PHOTO_MAX_PIXELS
    resp = _report(client, too_many)
    assert resp.status_code == 422 and "6400x4000" in resp.text, resp.text
    assert nothing_stored(backend)


def _object(settings, key: str) -> bytes:
    from api.evidence_store import make_store

    return make_store(settings).get(key)
