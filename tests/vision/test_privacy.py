"""Faces are blurred before evidence leaves the box (Haar cascades shipped with opencv-python 4.x)."""

from __future__ import annotations


import cv2
import numpy as np
import pytest

from tests.support.photos import zidane
from vision.privacy import PrivacyFilter


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return zidane()


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


@pytest.mark.parametrize("height,width", [(720, 1280), (1080, 1920), (2160, 3840)])
def test_a_face_found_at_720p_is_found_at_1080p_and_4k(photo, height, width):
    """Large frames were searched at 960 px wide, where a 90 px face fell under the cascade's
    window: found at 720p, it went out unblurred at 1080p and 4K."""
    face = cv2.resize(photo[100:270, 905:1075], (90, 90), interpolation=cv2.INTER_AREA)  # Zidane's face
    frame = np.full((height, width, 3), 90, np.uint8)
    y, x = height // 2, width // 2
    frame[y:y + 90, x:x + 90] = face
    assert any(_overlaps(b, (x, y, 90, 90)) for b in PrivacyFilter().find(frame))


def test_grey_and_four_channel_and_sliver_frames_do_not_crash():
    pf = PrivacyFilter()
    for frame in (np.zeros((360, 640), np.uint8), np.zeros((360, 640, 4), np.uint8), np.zeros((1, 3000, 3), np.uint8)):
        assert pf.find(frame) == []


def test_frame_without_faces_is_returned_unchanged():
    flat = np.full((360, 640, 3), 90, np.uint8)
    out, boxes = PrivacyFilter().blur(flat)
    assert boxes == [] and np.array_equal(out, flat)


def test_the_edge_blurs_every_image_it_renders_unless_the_camera_turns_it_off(photo):
    """EdgePipeline._make_event is where evidence is rendered: every image of an event (frame,
    annotated, crop) comes from the blurred copy; a camera with privacy_blur: false keeps faces."""
    import time
    import uuid

    from api.schemas import IssueType
    from streams.config import EdgeConfig
    from streams.pipeline import EdgePipeline
    from tests.streams.test_edge_faults import NoDetections
    from vision.confirm import ConfirmedIssue

    config = EdgeConfig.model_validate({"http": None, "cameras": [
        {"name": "blurred", "url": "rtsp://127.0.0.1/a"},
        {"name": "plain", "url": "rtsp://127.0.0.1/b", "privacy_blur": False}]})
    edge = EdgePipeline(config, detector=NoDetections(), uploader=object())
    now = time.time()
    face = next(b for b in PrivacyFilter().find(photo) if _overlaps(b, (930, 120, 120, 120)))
    x, y, w, h = face
    issue = ConfirmedIssue(uuid.uuid4(), IssueType.street_vending, 0, 1, (x - 20.0, y - 20.0, x + w + 20.0, y + h + 20.0),
                           0.9, now - 10, now)
    decode = lambda data: cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)  # noqa: E731
    blurred = edge._make_event(edge.cameras["blurred"], photo, issue).images
    plain = edge._make_event(edge.cameras["plain"], photo, issue).images
    sharp = _sharpness(decode(plain["frame"]), face)
    assert _sharpness(decode(blurred["frame"]), face) < 0.2 * sharp
    crop_b, crop_p = decode(blurred["crop"]), decode(plain["crop"])
    assert crop_b.shape == crop_p.shape
    from vision.evidence import crop

    # the crop is cut from the blurred copy, not from the original
    expected = crop(PrivacyFilter().blur(photo)[0], issue.box).astype(int)
    assert np.abs(crop_b.astype(int) - expected).mean() < 0.5 * np.abs(crop_p.astype(int) - expected).mean()
    assert not any(_overlaps(b, face) for b in PrivacyFilter().find(decode(blurred["annotated"])))


def test_heads_of_people_and_plates_of_vehicles_come_from_the_detectors_boxes():
    from vision.privacy import regions_from_detections

    boxes = np.array([[100, 200, 140, 360], [300, 300, 500, 400], [10, 10, 50, 50]], np.float32)
    regions = regions_from_detections(boxes, ["person", "car", "umbrella"])
    assert regions == [(100, 200, 40, 40), (300, 355, 200, 45)]  # the top quarter; the lower 45 %


def test_a_person_the_cascades_miss_is_blurred_from_the_detector(photo):
    """A face turned away or at night gives no cascade hit; the detector's person box still
    covers its head. The edge blurs it when its model has a person class."""
    import time
    import uuid

    from api.schemas import IssueType
    from streams.config import EdgeConfig
    from streams.pipeline import EdgePipeline
    from tests.streams.test_edge_faults import NoDetections
    from vision.confirm import ConfirmedIssue
    from vision.detections import Detections

    config = EdgeConfig.model_validate({"http": None, "cameras": [{"name": "c", "url": "rtsp://127.0.0.1/a"}]})
    edge = EdgePipeline(config, detector=NoDetections(), uploader=object())
    person_id = max(edge.manifest.classes) + 1
    edge.manifest.classes[person_id] = edge.manifest.classes[min(edge.manifest.classes)].model_copy(
        update={"name": "person", "issue_type": None})
    head = (300, 400, 60, 60)  # a patch of texture no cascade calls a face
    frame = photo.copy()
    rng = np.random.default_rng(0)
    frame[head[1]:head[1] + 60, head[0]:head[0] + 60] = rng.integers(0, 255, (60, 60, 3), dtype=np.uint8)
    now = time.time()
    issue = ConfirmedIssue(uuid.uuid4(), IssueType.clutter, 0, 1, (280.0, 380.0, 380.0, 640.0), 0.9, now - 10, now)
    person = Detections(np.array([[300, 400, 360, 640]]), np.array([0.3]), np.array([person_id]))
    decode = lambda data: cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)  # noqa: E731
    with_person = decode(edge._make_event(edge.cameras["c"], frame, issue, person).images["frame"])
    without = decode(edge._make_event(edge.cameras["c"], frame, issue).images["frame"])
    assert _sharpness(with_person, head) < 0.2 * _sharpness(without, head)
