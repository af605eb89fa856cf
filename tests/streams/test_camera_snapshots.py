"""Each camera's snapshot from the box: blurred as evidence is (even where events are sent
unblurred), sent at the configured rate, never waiting on the network in the detection loop,
a failure not retried before the next interval; end to end with the real API process on the
real S3 server (SeaweedFS), one object per camera however many uploads."""

from __future__ import annotations

import subprocess
import threading
import time

import cv2
import httpx
import numpy as np
import pytest
from minio import Minio

from api.local_s3 import LocalS3Server
from streams.camera_server import RtspCameraServer
from streams.camera_snapshots import MAX_WAITING, SnapshotUploader, pipeline_blur, start_snapshots
from streams.config import EdgeConfig
from streams.pipeline import EdgePipeline
from tests.streams.api_process import ApiProcess
from tests.streams.helpers import CLIP_H, CLIP_W, wait_for
from tests.streams.test_edge_faults import NoDetections, NullUploader
from tests.support.photos import zidane
from vision.privacy import PrivacyFilter

FACE = (930, 120, 120, 120)  # x, y, w, h: Zidane's face in ultralytics' 1280x720 zidane.jpg


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return zidane()


class FakeApi:
    """Records the snapshots PUT to it; answers `status` (or raises `error`)."""

    def __init__(self) -> None:
        self.puts: list[tuple[str, bytes]] = []
        self.status = 200
        self.error: Exception | None = None
        self.hold: threading.Event | None = None

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.hold is not None:
            self.hold.wait(10)
        if self.error is not None:
            raise self.error
        self.puts.append((request.url.path, request.content))
        assert request.headers["content-type"] == "image/jpeg"
        return httpx.Response(self.status, json={})

    def client(self) -> httpx.Client:
        return httpx.Client(base_url="http://api", transport=httpx.MockTransport(self.handle))


def _pipeline(**extra) -> EdgePipeline:
    # privacy_blur off for events: the snapshot is blurred anyway
    config = EdgeConfig.model_validate({"http": None, "privacy_blur": False, "verify_fixes": False,
                                        "cameras": [{"name": "c1", "url": "rtsp://127.0.0.1:1/x"}], **extra})
    return EdgePipeline(config, detector=NoDetections(), uploader=NullUploader())


def _sharpness(image: np.ndarray, box) -> float:
    x, y, w, h = box
    return float(cv2.Laplacian(cv2.cvtColor(image[y:y + h, x:x + w], cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())


def test_a_snapshot_is_blurred_like_evidence_and_sent_at_the_configured_rate(photo):
    api, now = FakeApi(), [0.0]
    uploader = SnapshotUploader(api.client(), 600, pipeline_blur(_pipeline()), clock=lambda: now[0])

    assert uploader.offer("c1", photo) and uploader.send_waiting() == 1
    path, body = api.puts[0]
    assert path == "/api/v1/cameras/c1/snapshot"
    sent = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
    assert sent.shape == photo.shape
    assert _sharpness(photo, FACE) > 10 * _sharpness(sent, FACE)  # the face's detail is gone
    x, y, w, h = FACE
    assert not any(min(bx + bw, x + w) > max(bx, x) and min(by + bh, y + h) > max(by, y)
                   for bx, by, bw, bh in PrivacyFilter().find(sent))
    assert np.abs(sent[-40:, :40].astype(int) - photo[-40:, :40]).mean() < 8  # the rest is the frame

    # One frame per 600 s, however many frames are analysed in between: at 0, 600, 1200, 1800.
    for t in range(5, 1900, 5):
        now[0] = float(t)
        uploader.offer("c1", photo)
        uploader.send_waiting()
    assert len(api.puts) == 4 and uploader.sent == 4


def test_a_failed_upload_waits_for_the_next_interval_and_nothing_piles_up(photo):
    api, now = FakeApi(), [0.0]
    uploader = SnapshotUploader(api.client(), 60, lambda image, _: image, clock=lambda: now[0])
    api.status = 503
    assert uploader.offer("c1", photo) and uploader.send_waiting() == 0
    assert uploader.failed == 1 and uploader.last_status["c1"] == 503
    api.status, now[0] = 200, 30.0
    assert not uploader.offer("c1", photo)  # not retried before its interval
    api.error, now[0] = httpx.ConnectError("refused"), 60.0
    assert uploader.offer("c1", photo) and uploader.send_waiting() == 0 and uploader.last_status["c1"] is None
    api.error, now[0] = None, 120.0
    assert uploader.offer("c1", photo) and uploader.send_waiting() == 1

    # A sender that is behind holds at most MAX_WAITING frames; the others are taken later.
    now[0] = 1000.0
    taken = [uploader.offer(f"cam-{i}", photo) for i in range(MAX_WAITING + 3)]
    assert taken == [True] * MAX_WAITING + [False] * 3
    assert uploader.send_waiting() == MAX_WAITING
    assert all(uploader.offer(f"cam-{i}", photo) for i in range(MAX_WAITING, MAX_WAITING + 3))


def test_a_frame_that_cannot_be_blurred_is_not_sent(photo):
    api = FakeApi()

    def broken(image, detections):
        raise RuntimeError("no cascades")

    uploader = SnapshotUploader(api.client(), 60, broken)
    assert uploader.offer("c1", photo) and uploader.send_waiting() == 0
    assert api.puts == [] and uploader.failed == 1


def test_snapshot_s_0_sends_none():
    assert start_snapshots(_pipeline(api={"snapshot_s": 0}), {}) is None
    uploader = start_snapshots(_pipeline(api={"snapshot_s": 30}), {})
    try:
        assert uploader is not None and uploader.interval_s == 30
    finally:
        uploader.stop()
        uploader.client.close()


def test_offering_never_waits_for_the_network(photo):
    api = FakeApi()
    api.hold = threading.Event()  # the API hangs
    uploader = SnapshotUploader(api.client(), 600, lambda image, _: image).start()
    try:
        assert uploader.offer("c1", photo)
        time.sleep(0.3)  # the sender is stuck in its PUT now
        started = time.monotonic()
        for i in range(200):
            uploader.offer(f"cam-{i % 8}", photo)
        assert time.monotonic() - started < 0.1
    finally:
        api.hold.set()
        uploader.stop()
    assert api.puts  # it went once the API answered


@pytest.mark.integration
def test_a_running_box_uploads_each_cameras_snapshot_to_s3_through_the_api(clip, tmp_path):
    api = ApiProcess(tmp_path / "api")
    with LocalS3Server(data_dir=tmp_path / "s3") as s3:
        api.env.update(STREETWATCH_S3_ENDPOINT=s3.endpoint, STREETWATCH_S3_ACCESS_KEY=s3.access_key,
                       STREETWATCH_S3_SECRET_KEY=s3.secret_key, STREETWATCH_S3_BUCKET="snapshots-e2e")
        key = subprocess.run([*api.cli, "api", "create-key", "--name", "box-1", "--role", "edge", "--box", "box-1"],
                             env=api.env, cwd=api.workdir, check=True, capture_output=True, text=True).stdout.strip()
        with api, RtspCameraServer({"s1": clip, "s2": clip}) as cameras:
            config = EdgeConfig.model_validate({
                "api": {"url": api.url, "key": key, "box_id": "box-1", "heartbeat_s": 1, "snapshot_s": 2},
                "outbox": {"path": str(tmp_path / "outbox")}, "sample_interval_s": 0.5, "http": None,
                "verify_fixes": False, "cameras": [{"name": n, "url": cameras.url(n)} for n in ("s1", "s2")]})
            edge = EdgePipeline(config, detector=NoDetections(), uploader=NullUploader())
            edge.start()

            def snapshot(name: str) -> httpx.Response:
                return httpx.get(f"{api.url}/api/v1/cameras/{name}/snapshot", headers=api.reader, timeout=5)

            try:
                assert wait_for(lambda: all(snapshot(n).status_code == 200 for n in ("s1", "s2")), 40), \
                    [snapshot(n).text for n in ("s1", "s2")]
                first = snapshot("s1")
                image = cv2.imdecode(np.frombuffer(first.content, np.uint8), cv2.IMREAD_COLOR)
                assert image.shape == (CLIP_H, CLIP_W, 3)
                assert wait_for(lambda: snapshot("s1").headers["etag"] != first.headers["etag"], 20)
                listed = {c["name"]: c for c in httpx.get(f"{api.url}/api/v1/cameras", headers=api.reader).json()}
                assert listed["s1"]["snapshot_at"] and listed["s2"]["snapshot_at"]
            finally:
                edge.stop()
            sent = edge.fleet.snapshots.sent
        client = Minio(s3.endpoint, access_key=s3.access_key, secret_key=s3.secret_key, secure=False)
        objects = [o.object_name for o in client.list_objects("snapshots-e2e", prefix="cameras/", recursive=True)]
    assert sent >= 3 and sorted(objects) == ["cameras/1/snapshot.jpg", "cameras/2/snapshot.jpg"], (sent, objects)
