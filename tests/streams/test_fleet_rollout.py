"""Model rollout end to end: the real API process with SeaweedFS as its store, two edge boxes
on real RTSP cameras running streetwatch-demo v1. A push whose upload is corrupted reaches
neither box (the API refuses the file, the version cannot be assigned); the same push made
whole by `streetwatch model push` is assigned with `streetwatch model assign` to one box first
(a canary), then to all, while the other box is off: it catches up when it comes back. A
version whose graph does not load leaves the canary on its model, and the API hears why; the
assignment withdrawn (`streetwatch model unassign --all`), both boxes go back to v1, their YAML's."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml

from api.local_s3 import LocalS3Server
from streams.camera_server import RtspCameraServer
from streams.config import EdgeConfig
from streams.pipeline import EdgePipeline
from tests.streams.api_process import ApiProcess
from tests.streams.helpers import wait_for
from tests.streams.test_edge_faults import NullUploader
from vision.model_push import model_files

pytestmark = pytest.mark.integration
DEMO = Path(__file__).resolve().parents[2] / "models" / "streetwatch-demo"


def _key(api: ApiProcess, *args: str) -> str:
    return subprocess.run([*api.cli, "api", "create-key", *args], env=api.env, cwd=api.workdir, check=True,
                          capture_output=True, text=True).stdout.strip()


def _published(tmp_path: Path, version: str = "2") -> Path:
    """streetwatch-demo published again as another version (its OpenVINO export is not in git:
    left out)."""
    folder = tmp_path / "models" / "streetwatch-demo"
    folder.mkdir(parents=True)
    for name in ("streetwatch-demo.pt", "streetwatch-demo.onnx"):
        shutil.copy(DEMO / name, folder / name)
    manifest = yaml.safe_load((DEMO / "manifest.yaml").read_text())
    (folder / "manifest.yaml").write_text(yaml.safe_dump({**manifest, "version": version}))
    return folder


def test_a_pushed_model_reaches_the_boxes_and_a_corrupted_push_reaches_none(clip, tmp_path):
    api = ApiProcess(tmp_path / "api")
    admin_key = _key(api, "--name", "admin", "--role", "admin")
    admin = {"Authorization": f"Bearer {admin_key}"}
    keys = {b: _key(api, "--name", b, "--role", "edge", "--box", b) for b in ("box-1", "box-2")}
    model = _published(tmp_path)
    cli_env = {**api.env, "STREETWATCH_ADMIN_KEY": admin_key, "STREETWATCH_API_URL": api.url}
    with LocalS3Server(data_dir=tmp_path / "s3") as s3, RtspCameraServer({"c1": clip, "c2": clip}) as cams:
        api.env.update(STREETWATCH_S3_ENDPOINT=s3.endpoint, STREETWATCH_S3_ACCESS_KEY=s3.access_key,
                       STREETWATCH_S3_SECRET_KEY=s3.secret_key, STREETWATCH_S3_BUCKET="rollout")
        api.start()

        def box(box_id: str, camera: str) -> EdgePipeline:
            config = EdgeConfig.model_validate({
                "model": str(DEMO), "detector": "onnxruntime", "inference_workers": 1,
                "api": {"url": api.url, "key": keys[box_id], "box_id": box_id, "heartbeat_s": 1, "config_poll_s": 1},
                "outbox": {"path": str(tmp_path / box_id)}, "sample_interval_s": 1.0, "http": None,
                "verify_fixes": False, "cameras": [{"name": camera, "url": cams.url(camera)}]})
            edge = EdgePipeline(config, uploader=NullUploader())
            edge.start()
            return edge

        def running() -> dict[str, str | None]:
            boxes = httpx.get(f"{api.url}/api/v1/boxes", headers=admin, timeout=5).json()
            return {b["id"]: b["model"]["version"] if b["model"] else None for b in boxes}

        edges = {"box-1": box("box-1", "c1"), "box-2": box("box-2", "c2")}
        try:
            assert wait_for(lambda: running() == {"box-1": "1", "box-2": "1"}, 30), running()

            # A corrupted upload: refused, nothing stored, the version cannot be assigned.
            text, paths, left_out = model_files(model)  # what `model push` sends
            assert left_out == ["openvino"]
            files = {n: p.read_bytes() for n, p in paths.items()}
            declared = [{"path": n, "sha256": hashlib.sha256(d).hexdigest(), "size": len(d)} for n, d in files.items()]
            resp = httpx.post(f"{api.url}/api/v1/models", headers=admin, timeout=30,
                              json={"manifest": text, "files": declared})
            assert resp.status_code == 201, resp.text
            broken = bytearray(files["streetwatch-demo.onnx"])
            broken[1000] ^= 0xFF
            for name, data in files.items():
                sent = bytes(broken) if name == "streetwatch-demo.onnx" else data
                put = httpx.put(f"{api.url}/api/v1/models/streetwatch-demo/2/files/{name}", content=sent,
                                headers={**admin, "Content-Type": "application/octet-stream"}, timeout=30)
                assert put.status_code == (422 if sent is not data else 200), put.text
            assign = httpx.put(f"{api.url}/api/v1/models/assignment", headers=admin,
                               json={"name": "streetwatch-demo", "version": "2"})
            assert assign.status_code == 409, assign.text
            box_config = httpx.get(f"{api.url}/api/v1/boxes/box-1/config",
                                   headers={"Authorization": f"Bearer {keys['box-1']}"}).json()
            assert box_config["model"] is None and running() == {"box-1": "1", "box-2": "1"}

            # The real push completes it; the canary gets it first.
            pushed = subprocess.run([*api.cli, "model", "push", str(model)], env=cli_env, cwd=tmp_path,
                                    capture_output=True, text=True)
            assert pushed.returncode == 0, pushed.stderr
            assert "pushed streetwatch-demo v2: 3 files" in pushed.stdout and "ready" in pushed.stdout
            canary = subprocess.run([*api.cli, "model", "assign", "streetwatch-demo", "2", "--box", "box-1"],
                                    env=cli_env, cwd=tmp_path, capture_output=True, text=True)
            assert canary.returncode == 0 and "box-1: streetwatch-demo v2" in canary.stdout, canary.stderr
            assert wait_for(lambda: running() == {"box-1": "2", "box-2": "1"}, 30), running()
            assert edges["box-1"].manifest.path == (tmp_path / "box-1" / "models" / "streetwatch-demo" / "2")
            frames = edges["box-1"].cameras["c1"].frames_analysed
            assert wait_for(lambda: edges["box-1"].cameras["c1"].frames_analysed > frames + 2, 15)  # on the new model

            # A version whose graph does not load (pushed whole: its checksums match) leaves the
            # canary on v2, and its heartbeat says why.
            broken_model = _published(tmp_path / "v3", version="3")
            (broken_model / "streetwatch-demo.onnx").write_bytes(b"not an onnx graph" * 1000)
            assert subprocess.run([*api.cli, "model", "push", str(broken_model)], env=cli_env, cwd=tmp_path,
                                  capture_output=True).returncode == 0
            assert subprocess.run([*api.cli, "model", "assign", "streetwatch-demo", "3", "--box", "box-1"], env=cli_env,
                                  cwd=tmp_path, capture_output=True).returncode == 0

            def failing() -> dict[str, str]:
                listed = httpx.get(f"{api.url}/api/v1/models", headers=admin, timeout=5).json()
                return next(m for m in listed if m["version"] == "3")["failing_on"]

            assert wait_for(lambda: "box-1" in failing(), 30), failing()
            assert "fails to load or warm up" in failing()["box-1"] and running() == {"box-1": "2", "box-2": "1"}

            # Every box, while box-2 is off: it catches up when it comes back.
            edges.pop("box-2").stop()
            everyone = subprocess.run([*api.cli, "model", "assign", "streetwatch-demo", "2"], env=cli_env,
                                      cwd=tmp_path, capture_output=True, text=True)
            assert everyone.returncode == 0 and "every box: streetwatch-demo v2" in everyone.stdout, everyone.stderr
            edges["box-2"] = box("box-2", "c2")
            assert wait_for(lambda: running() == {"box-1": "2", "box-2": "2"}, 30), running()

            def v2() -> dict:
                listed = httpx.get(f"{api.url}/api/v1/models", headers=admin, timeout=5).json()
                return next(m for m in listed if m["version"] == "2")

            # box-1 drops its note on v3 at its next config poll, which may come after box-2's return
            assert wait_for(lambda: v2()["failing_on"] == {}, 30), v2()
            assert v2()["assigned_to_all"] and v2()["running_on"] == ["box-1", "box-2"]
            boxes = f"{api.url}/api/v1/boxes"
            errors = lambda: [b["model_error"] for b in httpx.get(boxes, headers=admin).json()]  # noqa: E731
            assert wait_for(lambda: errors() == [None, None], 10), errors()  # box-1 runs what it is told again

            # Withdrawn (streetwatch model unassign): each box goes back to its YAML's model.
            withdrawn = subprocess.run([*api.cli, "model", "unassign", "--all"], env=cli_env, cwd=tmp_path,
                                       capture_output=True, text=True)
            assert withdrawn.returncode == 0 and "every box: its own model" in withdrawn.stdout, withdrawn.stderr
            assert wait_for(lambda: running() == {"box-1": "1", "box-2": "1"}, 30), running()
            assert all(e.manifest.path == DEMO for e in edges.values()) and errors() == [None, None]
        finally:
            for edge in edges.values():
                edge.stop()
            api.stop()
