"""The issue's "done when", with every part a real process: the API (`streetwatch api serve`)
on SeaweedFS, two edge boxes (`streetwatch edge -c`) on RTSP cameras. A camera killed in one
box raises the offline notification (timeout shortened to 3 s) for that camera alone, and
clears when it streams again; a zone edited through the API reaches the running box at its
first poll after the edit; a corrupted model push reaches neither box, the whole push
assigned to every box reaches both. (tests/streams/test_fleet_edge.py and
test_fleet_rollout.py drive the same steps on boxes inside the test process, in more detail.)
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from api.local_s3 import LocalS3Server
from streams.camera_server import RtspCameraServer
from tests.streams.api_process import ApiProcess
from tests.streams.helpers import wait_for
from tests.streams.test_fleet_rollout import DEMO, _key, _published
from vision.model_push import model_files

pytestmark = pytest.mark.integration
POLL_S = 3.0  # the boxes' config poll


def _edge(tmp_path: Path, api: ApiProcess, box: str, key: str, camera: str, url: str) -> subprocess.Popen:
    config = {"model": str(DEMO), "detector": "onnxruntime", "inference_workers": 1,
              "api": {"url": api.url, "key": key, "box_id": box, "heartbeat_s": 1, "config_poll_s": POLL_S},
              "outbox": {"path": str(tmp_path / box)}, "sample_interval_s": 1.0, "open_timeout_s": 3,
              "read_timeout_s": 3, "stall_timeout_s": 4, "backoff_initial_s": 0.5, "backoff_max_s": 2,
              "http": None, "verify_fixes": False, "cameras": [{"name": camera, "url": url, "grid_id": "g-1"}]}
    path = tmp_path / f"{box}.yaml"
    path.write_text(yaml.safe_dump(config))
    log = open(tmp_path / f"{box}.log", "wb")
    try:
        return subprocess.Popen([sys.executable, "-m", "streetwatch_cli", "edge", "-c", str(path)], cwd=tmp_path,
                                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    finally:
        log.close()  # the child has its own descriptor


def _stop(edge: subprocess.Popen) -> None:
    if edge.poll() is None:
        edge.send_signal(signal.SIGINT)
        try:
            edge.wait(20)
        except subprocess.TimeoutExpired:
            edge.kill()
            edge.wait(5)


def test_two_edge_processes_the_api_and_s3(clip, tmp_path):
    api = ApiProcess(tmp_path / "api")
    api.env.update(STREETWATCH_SWEEP_INTERVAL_SECONDS="1", STREETWATCH_CAMERA_OFFLINE_MINUTES="0.05")  # 3 s
    admin_key = _key(api, "--name", "admin", "--role", "admin")
    admin = {"Authorization": f"Bearer {admin_key}"}
    keys = {b: _key(api, "--name", b, "--role", "edge", "--box", b) for b in ("box-1", "box-2")}
    cli_env = {**api.env, "STREETWATCH_ADMIN_KEY": admin_key, "STREETWATCH_API_URL": api.url}
    edges: dict[str, subprocess.Popen] = {}
    with LocalS3Server(data_dir=tmp_path / "s3") as s3, RtspCameraServer({"c1": clip}) as cam1, \
            RtspCameraServer({"c2": clip}) as cam2:
        api.env.update(STREETWATCH_S3_ENDPOINT=s3.endpoint, STREETWATCH_S3_ACCESS_KEY=s3.access_key,
                       STREETWATCH_S3_SECRET_KEY=s3.secret_key, STREETWATCH_S3_BUCKET="fleet")
        api.start()

        def logs() -> str:
            return "\n".join(f"--- {b}\n{(tmp_path / f'{b}.log').read_text(errors='replace')[-1500:]}" for b in edges)

        def cameras() -> dict[str, str]:
            return {c["name"]: c["state"] for c in httpx.get(f"{api.url}/api/v1/cameras", headers=admin,
                                                              timeout=5).json()}

        def alerts() -> list[tuple[str, str | None]]:
            got = httpx.get(f"{api.url}/api/v1/notifications", headers=admin, timeout=5).json()
            return [(n["kind"], n["camera"]) for n in reversed(got) if n["kind"].startswith("camera_")]

        def alerting() -> list[str]:
            got = httpx.get(f"{api.url}/api/v1/cameras", params={"alerting": "true"}, headers=admin, timeout=5)
            return [c["name"] for c in got.json()]

        def running() -> dict[str, str | None]:
            boxes = httpx.get(f"{api.url}/api/v1/boxes", headers=admin, timeout=5).json()
            return {b["id"]: b["model"]["version"] if b["model"] else None for b in boxes}

        try:
            httpx.post(f"{api.url}/api/v1/grids", json={"id": "g-1", "supervisor": "wang"},
                       headers=admin).raise_for_status()
            edges["box-1"] = _edge(tmp_path, api, "box-1", keys["box-1"], "c1", cam1.url("c1"))
            edges["box-2"] = _edge(tmp_path, api, "box-2", keys["box-2"], "c2", cam2.url("c2"))
            assert wait_for(lambda: cameras() == {"c1": "streaming", "c2": "streaming"}, 90), logs()
            assert running() == {"box-1": "1", "box-2": "1"}
            # A box starting slowly reports its camera `reconnecting` until the first frame: past
            # the 3 s offline time that alone alerts (and clears). The kill's alerts come after these.
            assert wait_for(lambda: not alerting(), 10), alerting()
            before = len(alerts())

            # A camera killed in box-1: blind for the shortened offline time, its supervisor is told;
            # box-2's camera is not. Back, the alert clears.
            cam1.stop()
            assert wait_for(lambda: cameras() == {"c1": "stalled", "c2": "streaming"}, 30), (cameras(), logs())
            assert wait_for(lambda: alerts()[before:] == [("camera_offline", "c1")], 20), alerts()
            assert alerting() == ["c1"]
            cam1.start()
            assert wait_for(lambda: cameras() == {"c1": "streaming", "c2": "streaming"}, 40), (cameras(), logs())
            assert wait_for(lambda: alerts()[before:] == [("camera_offline", "c1"), ("camera_back", "c1")], 10), \
                alerts()
            assert alerting() == []

            # A zone edited through the API reaches box-2 at its first poll after the edit.
            applied = "camera c2: 1 zone(s), 0 mask(s) from the API"
            assert applied not in logs()
            edited = time.monotonic()
            httpx.put(f"{api.url}/api/v1/cameras/c2/zones", headers=admin, json={
                "frame_width": 640, "frame_height": 360,
                "zones": {"kerb": {"polygon": [[0, 100], [300, 100], [300, 360], [0, 360]]}}}).raise_for_status()
            assert wait_for(lambda: applied in logs(), 2 * POLL_S), logs()
            assert time.monotonic() - edited < POLL_S + 2  # the next poll, not a later one
            kept = json.loads((tmp_path / "box-2" / "central-zones.json").read_text())  # what a restart applies
            assert kept["cameras"]["c2"]["zones"]["kerb"]["polygon"][1] == [300, 100]
            assert applied not in (tmp_path / "box-1.log").read_text()  # box-1's camera has no central zones

            # A corrupted push reaches neither box; the whole push, assigned to all, reaches both.
            model = _published(tmp_path)
            text, paths, _ = model_files(model)
            files = {n: p.read_bytes() for n, p in paths.items()}
            declared = [{"path": n, "sha256": hashlib.sha256(d).hexdigest(), "size": len(d)} for n, d in files.items()]
            httpx.post(f"{api.url}/api/v1/models", headers=admin, json={"manifest": text, "files": declared},
                       timeout=30).raise_for_status()
            corrupted = files["streetwatch-demo.onnx"][:-1] + bytes([files["streetwatch-demo.onnx"][-1] ^ 0xFF])
            put = httpx.put(f"{api.url}/api/v1/models/streetwatch-demo/2/files/streetwatch-demo.onnx",
                            content=corrupted, headers={**admin, "Content-Type": "application/octet-stream"},
                            timeout=30)
            assert put.status_code == 422, put.text
            refused = httpx.put(f"{api.url}/api/v1/models/assignment", headers=admin,
                                json={"name": "streetwatch-demo", "version": "2"})
            assert refused.status_code == 409, refused.text
            time.sleep(POLL_S + 1)  # a poll of each box since
            assert running() == {"box-1": "1", "box-2": "1"}
            assert not any(any((tmp_path / b / "models").glob("*/2")) for b in edges)  # nothing fetched

            pushed = subprocess.run([*api.cli, "model", "push", str(model)], env=cli_env, cwd=tmp_path,
                                    capture_output=True, text=True)
            assert pushed.returncode == 0 and "ready" in pushed.stdout, pushed.stderr
            everyone = subprocess.run([*api.cli, "model", "assign", "streetwatch-demo", "2"], env=cli_env,
                                      cwd=tmp_path, capture_output=True, text=True)
            assert everyone.returncode == 0, everyone.stderr
            assert wait_for(lambda: running() == {"box-1": "2", "box-2": "2"}, 60), (running(), logs())
            assert all(e.poll() is None for e in edges.values()), logs()
            assert cameras() == {"c1": "streaming", "c2": "streaming"}
        finally:
            for edge in edges.values():
                _stop(edge)
            api.stop()
