"""An edge box in a fleet, against the real API process and real RTSP cameras: its heartbeats
make its cameras known; a camera killed becomes `stalled` in the API, notifies its grid's
supervisor after the (shortened) offline time, and clears when it streams again; a zone edited
through the API reaches the running box within one poll."""

from __future__ import annotations

import subprocess

import httpx
import pytest

from streams.camera_server import RtspCameraServer
from streams.config import EdgeConfig
from streams.pipeline import EdgePipeline
from tests.streams.api_process import ApiProcess
from tests.streams.helpers import wait_for
from tests.streams.test_edge_faults import NoDetections, NullUploader

pytestmark = pytest.mark.integration


def _key(api: ApiProcess, *args: str) -> dict[str, str]:
    key = subprocess.run([*api.cli, "api", "create-key", *args], env=api.env, cwd=api.workdir, check=True,
                         capture_output=True, text=True).stdout.strip()
    return {"Authorization": f"Bearer {key}"}


def test_a_killed_camera_is_stalled_in_the_api_alerts_and_clears_when_back(clip, tmp_path):
    api = ApiProcess(tmp_path / "api")
    api.env.update(STREETWATCH_SWEEP_INTERVAL_SECONDS="1", STREETWATCH_CAMERA_OFFLINE_MINUTES="0.05")  # 3 s
    admin = _key(api, "--name", "admin", "--role", "admin")
    edge_key = _key(api, "--name", "box-1", "--role", "edge", "--box", "box-1")["Authorization"][7:]
    with api, RtspCameraServer({"s1": clip}) as steady, RtspCameraServer({"kil": clip}) as doomed:
        httpx.post(f"{api.url}/api/v1/grids", json={"id": "g-1", "supervisor": "wang"}, headers=admin).raise_for_status()
        config = EdgeConfig.model_validate({
            "api": {"url": api.url, "key": edge_key, "box_id": "box-1", "heartbeat_s": 1, "config_poll_s": 1},
            "outbox": {"path": str(tmp_path / "outbox")},
            "sample_interval_s": 1.0, "open_timeout_s": 3, "read_timeout_s": 3, "stall_timeout_s": 4,
            "backoff_initial_s": 0.5, "backoff_max_s": 2, "http": None, "verify_fixes": False,
            "cameras": [{"name": "s1", "url": steady.url("s1"), "grid_id": "g-1"},
                        {"name": "kil", "url": doomed.url("kil"), "grid_id": "g-1"}]})
        edge = EdgePipeline(config, detector=NoDetections(), uploader=NullUploader())
        edge.start()

        def cameras() -> dict[str, dict]:
            return {c["name"]: c for c in httpx.get(f"{api.url}/api/v1/cameras", headers=admin, timeout=5).json()}

        def kinds() -> list[tuple[str, str | None]]:
            got = httpx.get(f"{api.url}/api/v1/notifications", headers=admin, timeout=5).json()
            return [(n["kind"], n["camera"]) for n in reversed(got) if n["kind"].startswith("camera_")]

        try:
            assert wait_for(lambda: {c["state"] for c in cameras().values()} == {"streaming"}, 30), cameras()
            box = httpx.get(f"{api.url}/api/v1/boxes", headers=admin).json()[0]
            assert box["id"] == "box-1" and box["online"] and box["model"]["name"] == "streetwatch-demo"
            assert len(box["model"]["sha256"]) == 64

            doomed.stop()
            assert wait_for(lambda: cameras()["kil"]["state"] == "stalled", 20), cameras()
            assert cameras()["s1"]["state"] == "streaming"
            assert wait_for(lambda: kinds() == [("camera_offline", "kil")], 15), kinds()

            doomed.start()
            assert wait_for(lambda: cameras()["kil"]["state"] == "streaming", 40), cameras()
            assert wait_for(lambda: kinds() == [("camera_offline", "kil"), ("camera_back", "kil")], 10), kinds()
            states = httpx.get(f"{api.url}/api/v1/cameras/kil/states", headers=admin).json()
            assert states[0]["to_state"] == "streaming" and "stalled" in {s["to_state"] for s in states}

            # A zone edited through the API reaches the running box within a poll.
            zone = [[0, 100], [300, 100], [300, 360], [0, 360]]
            httpx.put(f"{api.url}/api/v1/cameras/s1/zones", headers=admin, json={
                "frame_width": 640, "frame_height": 360, "zones": {"kerb": {"polygon": zone}}}).raise_for_status()
            polygon = lambda: [a.polygon.reshape(-1, 2).tolist() for a in edge.cameras["s1"].zones]  # noqa: E731
            assert wait_for(lambda: polygon() == [zone], 5), polygon()
        finally:
            edge.stop()
