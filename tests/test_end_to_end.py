"""The whole loop on real components: an RTSP camera (gst-rtsp-server) looping a rendered
street clip → the edge pipeline with the bundled model → the API (uvicorn) → evidence in a
real S3 server (SeaweedFS) → one order per issue in the clip."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from minio import Minio

from api.local_s3 import LocalS3Server
from datasets.synth.clip import render_clip
from streams.camera_server import RtspCameraServer, free_port
from streams.config import EdgeConfig
from streams.pipeline import EdgePipeline
from streams.uplink import EventUploader, OutgoingEvent, post_event
from tests.support.artefacts import shared_artefact
from tests.support.servers import wait_until_answers

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.integration


class RecordingUploader(EventUploader):
    """The real uploader, keeping a copy of everything it was given so the test can resend."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.submitted: list[OutgoingEvent] = []

    def submit(self, item: OutgoingEvent) -> None:
        self.submitted.append(item)
        super().submit(item)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """Rendered once per run for this module and test_end_to_end_snapshot (~15 s of CPU each)."""
    return shared_artefact(tmp_path_factory, "street-30s", lambda d: render_clip(d / "street.mp4", seconds=30))


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    with LocalS3Server(data_dir=tmp_path_factory.mktemp("s3")) as server:
        yield server


READER: dict[str, str] = {}  # a reviewer key's header, made by the api_url fixture


@pytest.fixture(scope="module")
def api_url(tmp_path_factory, s3):
    workdir = tmp_path_factory.mktemp("api")
    env = {**os.environ, "STREETWATCH_DATABASE_URL": f"sqlite:///{workdir / 'sw.db'}",
           "STREETWATCH_S3_ENDPOINT": s3.endpoint, "STREETWATCH_S3_ACCESS_KEY": s3.access_key,
           "STREETWATCH_S3_SECRET_KEY": s3.secret_key, "STREETWATCH_S3_BUCKET": "e2e-evidence",
           "STREETWATCH_API_KEY": "edge-secret"}
    cli = [sys.executable, "-m", "streetwatch_cli"]
    subprocess.run([*cli, "api", "migrate"], env=env, check=True, cwd=workdir, capture_output=True)
    key = subprocess.run([*cli, "api", "create-key", "--name", "e2e-reviewer", "--role", "reviewer"], env=env,
                         check=True, cwd=workdir, capture_output=True, text=True).stdout.strip()
    READER.update({"Authorization": f"Bearer {key}"})
    port = free_port()
    proc = subprocess.Popen([*cli, "api", "serve", "--port", str(port)], env=env, cwd=workdir)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_answers(f"{base}/healthz", proc)
        yield base
    finally:
        proc.terminate()
        proc.wait(10)


def test_one_order_per_issue_with_evidence_and_idempotent_resend(clip, s3, api_url):
    import json

    timeline = json.loads(clip.with_suffix(".json").read_text())
    expected = sorted(i["issue_type"] for i in timeline["issues"])
    assert expected == ["clutter", "flooding", "street_vending"]

    with RtspCameraServer({"street-1": clip}) as cameras:
        config = EdgeConfig.model_validate({
            "api": {"url": api_url, "key": "edge-secret"},
            "model": str(ROOT / "models" / "streetwatch-demo"),
            "sample_interval_s": 1.0,
            "issues": {t: {"confirm_seconds": 4, "min_hits": 3} for t in expected},
            "open_timeout_s": 2,
            "http": {"port": 0},  # /healthz and /metrics on any free port
            "cameras": [{"name": "street-1", "url": cameras.url("street-1"), "lat": 31.23, "lon": 121.47},
                        # a camera that never answers must not hold up the others
                        {"name": "dead-1", "url": f"rtsp://127.0.0.1:{free_port()}/gone"}],
        })
        uploader = RecordingUploader(api_url, "edge-secret")
        edge = EdgePipeline(config, uploader=uploader)
        edge.start()
        try:
            deadline = time.monotonic() + 120
            orders: list[dict] = []
            # Run past one full loop of the clip: the issues vanish and return, which must
            # not create second orders.
            min_end = time.monotonic() + 40
            while time.monotonic() < deadline:
                orders = httpx.get(f"{api_url}/api/v1/orders", headers=READER, timeout=5).json()["data"]
                if len(orders) >= 3 and time.monotonic() > min_end and uploader.pending() == 0:
                    break
                time.sleep(2)
            dead_state = edge.health()["cameras"]["dead-1"]["state"]
        finally:
            edge.stop()

    assert sorted(o["issue_type"] for o in orders) == expected, orders
    assert all(o["camera"] == "street-1" for o in orders)
    assert dead_state in ("reconnecting", "stalled")
    assert uploader.sent >= 3 and uploader.rejected == 0

    client = Minio(s3.endpoint, access_key=s3.access_key, secret_key=s3.secret_key, secure=False)
    for order in orders:
        detail = httpx.get(f"{api_url}/api/v1/orders/{order['id']}", headers=READER, timeout=5).json()
        kinds = {e["kind"] for e in detail["evidence"]}
        assert {"frame", "annotated", "crop"} <= kinds
        for evidence in detail["evidence"]:
            client.stat_object("e2e-evidence", evidence["object_key"])  # raises if missing
            body = httpx.get(evidence["url"], timeout=5)
            assert body.status_code == 200 and body.content[:3] == b"\xff\xd8\xff"

    # The edge retrying every event (say, after a lost answer) changes nothing.
    with httpx.Client(timeout=10) as http:
        for item in uploader.submitted:
            answer = post_event(http, api_url, item, "edge-secret")
            assert answer["replay"] is True
    after = httpx.get(f"{api_url}/api/v1/orders", headers=READER, timeout=5).json()["data"]
    assert len(after) == len(orders) == 3
