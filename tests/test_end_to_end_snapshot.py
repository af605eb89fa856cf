"""End to end in the snapshot modes: one http_snapshot camera (a snapshot server replaying the
rendered street clip as JPEGs) and one rtsp_snapshot camera (gst-rtsp-server, a connection
per grab) make their orders in the real API, with evidence in S3, confirmed from sparse
samples (vision/sparse_confirm.py), and a box mixing them with a stream camera is one config."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from streams.camera_server import RtspCameraServer
from streams.config import EdgeConfig
from streams.pipeline import EdgePipeline
from streams.snapshot_server import SnapshotServer, jpegs_of_clip
from tests.test_end_to_end import READER, ROOT, RecordingUploader, api_url, clip, s3  # noqa: F401 (fixtures)

pytestmark = pytest.mark.integration


def test_one_camera_per_snapshot_mode_makes_its_orders(clip, api_url):  # noqa: F811
    timeline = json.loads(clip.with_suffix(".json").read_text())
    expected = sorted(i["issue_type"] for i in timeline["issues"])
    frames = jpegs_of_clip(str(clip), every_s=0.5)
    with SnapshotServer({"street-http": frames}, frame_s=0.5) as http_cams, \
            RtspCameraServer({"street-rtsp": clip}, shared=False) as rtsp_cams:
        config = EdgeConfig.model_validate({
            "api": {"url": api_url, "key": "edge-secret"},
            "model": str(ROOT / "models" / "streetwatch-demo"),
            "sample_interval_s": 1.0,
            # sparse confirmation: the region in 3 of the last 5 samples over 4 s
            "issues": {t: {"confirm_seconds": 4, "min_hits": 3, "sample_window": 5} for t in expected},
            "snapshot": {"keep_session_below_s": 0, "timeout_s": 3, "keyframe_timeout_s": 4},
            "http": {"port": 0},
            "cameras": [
                {"name": "street-http", "mode": "http_snapshot", "snapshot_url": http_cams.url("street-http")},
                {"name": "street-rtsp", "mode": "rtsp_snapshot", "url": rtsp_cams.url("street-rtsp")},
            ],
        })
        uploader = RecordingUploader(api_url, "edge-secret")
        edge = EdgePipeline(config, uploader=uploader)
        edge.start()
        try:
            deadline = time.monotonic() + 150
            min_end = time.monotonic() + 40  # past one loop of the clip: returning issues are no new orders
            orders: list[dict] = []
            while time.monotonic() < deadline:
                orders = httpx.get(f"{api_url}/api/v1/orders", headers=READER, timeout=5,
                                   params={"limit": 100}).json()["data"]
                mine = [o for o in orders if o["camera"] in ("street-http", "street-rtsp")]
                if len(mine) >= 2 * len(expected) and time.monotonic() > min_end and uploader.pending() == 0:
                    break
                time.sleep(2)
            health = edge.health()
        finally:
            edge.stop()
    mine = [o for o in orders if o["camera"] in ("street-http", "street-rtsp")]
    for camera in ("street-http", "street-rtsp"):
        assert sorted(o["issue_type"] for o in mine if o["camera"] == camera) == expected, (camera, mine)
        assert health["cameras"][camera]["state"] == "streaming"
        assert health["cameras"][camera]["grabs"] >= 20
    assert uploader.rejected == 0
    detail = httpx.get(f"{api_url}/api/v1/orders/{mine[0]['id']}", headers=READER, timeout=5).json()
    assert {"frame", "annotated", "crop"} <= {e["kind"] for e in detail["evidence"]}
