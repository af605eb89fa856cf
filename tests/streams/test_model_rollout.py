"""Model rollout on the box: the detector is switched between two batches without dropping a
frame; a corrupted download, a model that does not load and one that fails its warm-up each
leave the box on its current model and say why; the downloaded model lives under the box's
state folder, never in models/."""

from __future__ import annotations

import hashlib
import shutil
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml

from streams.config import EdgeConfig
from streams.model_rollout import ModelRollout
from streams.pipeline import EdgePipeline
from streams.scheduler import InferenceScheduler
from vision.detections import Detections
from vision.detector import load_detector
from vision.manifest import load_manifest

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "models" / "streetwatch-demo"


class Tagged:
    """Answers every frame with one box of class `tag`: which model saw a frame."""

    def __init__(self, tag: int, delay_s: float = 0.005):
        self.tag, self.delay_s, self.calls = tag, delay_s, 0

    def detect_batch(self, frames):
        self.calls += 1
        time.sleep(self.delay_s)
        return [Detections(np.array([[0, 0, 10, 10]], np.float32), np.array([0.9], np.float32),
                           np.array([self.tag])) for _ in frames]


class Frame:
    def __init__(self, n: int):
        self.captured_at, self.image = float(n), np.zeros((36, 64, 3), np.uint8)


@pytest.mark.parametrize("workers", [1, 2])
def test_the_detector_is_switched_between_batches_without_dropping_a_frame(workers):
    seen: dict[str, list[tuple[float, int]]] = {f"c{i}": [] for i in range(6)}
    answered = {name: threading.Event() for name in seen}

    def on_result(camera, frame, detections, reused):
        seen[camera].append((frame.captured_at, int(detections.class_id[0])))
        answered[camera].set()

    old, new = [Tagged(1) for _ in range(workers)], [Tagged(2) for _ in range(workers)]
    scheduler = InferenceScheduler(old, on_result, max_batch=4, batch_wait_s=0.002)
    scheduler.start()
    stop = threading.Event()

    def camera(name: str) -> None:  # a camera whose next frame comes once the last was analysed
        n = 0
        while not stop.is_set():
            answered[name].clear()
            scheduler.submit(name, Frame(n))
            n += 1
            answered[name].wait(2)

    threads = [threading.Thread(target=camera, args=(name,)) for name in seen]
    for t in threads:
        t.start()
    time.sleep(0.3)
    scheduler.swap(new)
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join(5)
    scheduler.stop()
    assert scheduler.swaps == 1 and sum(scheduler.replaced.values()) == 0 and scheduler.errors == 0
    for name, results in seen.items():
        frames = [at for at, _ in results]
        assert frames == [float(i) for i in range(len(frames))], name  # every frame, in order, once
        tags = [tag for _, tag in results]
        assert tags == sorted(tags) and set(tags) == {1, 2}, (name, tags)  # old model, then only the new
    assert all(d.calls for d in new)


def _model_files(tmp_path: Path, version: str = "2") -> dict[str, bytes]:
    """streetwatch-demo published again as another version (weights and ONNX, no OpenVINO)."""
    manifest = yaml.safe_load((DEMO / "manifest.yaml").read_text())
    manifest.update(version=version, exports={"onnx": "streetwatch-demo.onnx"})
    return {"manifest.yaml": yaml.safe_dump(manifest).encode(),
            "streetwatch-demo.pt": (DEMO / "streetwatch-demo.pt").read_bytes(),
            "streetwatch-demo.onnx": (DEMO / "streetwatch-demo.onnx").read_bytes()}


def _assigned(files: dict[str, bytes], version: str = "2") -> dict:
    return {"name": "streetwatch-demo", "version": version, "weights": "streetwatch-demo.pt",
            "weights_sha256": hashlib.sha256(files["streetwatch-demo.pt"]).hexdigest(),
            "files": [{"path": p, "sha256": hashlib.sha256(d).hexdigest(), "size": len(d)} for p, d in files.items()]}


class FakeApi:
    """The links route and the files behind them; `served` may differ from what was declared."""

    def __init__(self, files: dict[str, bytes]):
        self.served, self.requests = dict(files), []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request.url.path)
        if request.url.path.endswith("/links"):
            return httpx.Response(200, json={"name": "streetwatch-demo", "version": "2", "expires_seconds": 900,
                                             "files": [{"path": p, "sha256": "0" * 64, "size": 1, "url": f"/files/{p}"}
                                                       for p in self.served]})
        return httpx.Response(200, content=self.served[request.url.path.removeprefix("/files/")])


@pytest.fixture
def box(tmp_path):
    """A pipeline running streetwatch-demo v1 on its inference worker (no cameras started)."""
    config = EdgeConfig.model_validate({"cameras": [{"name": "c1", "url": "rtsp://127.0.0.1:1/x"}],
                                        "outbox": {"path": str(tmp_path / "state")}, "detector": "onnxruntime"})
    manifest = load_manifest(DEMO)
    pipeline = EdgePipeline(config, detector=load_detector(manifest, "onnxruntime", 1))
    pipeline.scheduler = InferenceScheduler([pipeline.detector], lambda *a: None)
    pipeline.scheduler.start()
    yield pipeline
    pipeline.scheduler.stop()


def _rollout(box, api: FakeApi, tmp_path: Path, loader=None) -> ModelRollout:
    client = httpx.Client(base_url="http://api", transport=httpx.MockTransport(api))
    return ModelRollout(box, client, tmp_path / "state" / "models", loader=loader)


def test_an_assigned_model_is_downloaded_checked_loaded_and_switched_to(box, tmp_path):
    files = _model_files(tmp_path)
    api = FakeApi(files)
    rollout = _rollout(box, api, tmp_path)
    before = (DEMO / "manifest.yaml").read_text()
    rollout.assign(_assigned(files))
    assert rollout.step() and rollout.error is None
    assert (box.manifest.name, box.manifest.version) == ("streetwatch-demo", "2")
    assert box.manifest.path == (tmp_path / "state" / "models" / "streetwatch-demo" / "2").resolve()
    assert box.scheduler.swaps == 1 and box.detector.manifest.version == "2"
    assert (DEMO / "manifest.yaml").read_text() == before  # models/ is never written
    asked = len(api.requests)
    rollout.assign(_assigned(files))
    assert not rollout.step() and len(api.requests) == asked  # already running it: nothing fetched

    # A box restarted on its YAML model finds the download in its state folder: no fetch.
    box.manifest = load_manifest(DEMO)
    again = _rollout(box, api, tmp_path)
    again.assign(_assigned(files))
    assert again.step() and len(api.requests) == asked and box.manifest.version == "2"


def test_a_corrupted_download_leaves_the_box_on_its_model_and_says_why(box, tmp_path):
    files = _model_files(tmp_path)
    api = FakeApi(files)
    broken = bytearray(files["streetwatch-demo.onnx"])
    broken[5000] ^= 0xFF
    api.served["streetwatch-demo.onnx"] = bytes(broken)
    rollout = _rollout(box, api, tmp_path)
    rollout.assign(_assigned(files))
    assert not rollout.step()
    assert "streetwatch-demo.onnx: sha256 mismatch" in rollout.error
    assert rollout.error.endswith("still running streetwatch-demo v1")
    assert box.manifest.version == "1" and box.scheduler.swaps == 0
    folder = tmp_path / "state" / "models" / "streetwatch-demo" / "2"
    assert not (folder / "streetwatch-demo.onnx").exists() and not list(folder.glob("*.part"))

    api.served["streetwatch-demo.onnx"] = files["streetwatch-demo.onnx"][:-10]  # cut short
    assert not rollout.step() and "bytes arrived" in rollout.error

    api.served["streetwatch-demo.onnx"] = files["streetwatch-demo.onnx"]  # fixed: the next try succeeds
    assert rollout.step() and rollout.error is None and box.manifest.version == "2"


def test_a_model_that_does_not_load_or_warm_up_is_reported_and_not_retried(box, tmp_path):
    files = _model_files(tmp_path)
    files["streetwatch-demo.onnx"] = b"not an onnx graph" * 100  # pushed as such: its sha256 matches
    api = FakeApi(files)
    rollout = _rollout(box, api, tmp_path)
    rollout.assign(_assigned(files))
    assert not rollout.step()
    assert "fails to load or warm up" in rollout.error and "still running streetwatch-demo v1" in rollout.error
    assert box.manifest.version == "1" and box.scheduler.swaps == 0
    asked = len(api.requests)
    assert not rollout.step() and len(api.requests) == asked  # not retried until the assignment changes

    class Cold:
        def __init__(self, manifest):
            self.manifest = manifest

        def detect_batch(self, frames):
            raise RuntimeError("out of memory in the warm-up")

    good = _model_files(tmp_path, version="3")
    warm = _rollout(box, FakeApi(good), tmp_path, loader=lambda m: [Cold(m)])
    warm.assign(_assigned(good, "3"))
    assert not warm.step() and "RuntimeError: out of memory in the warm-up" in warm.error
    assert box.manifest.version == "1"


def test_a_state_folder_that_cannot_be_written_is_reported(box, tmp_path):
    files = _model_files(tmp_path)
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("x")
    client = httpx.Client(base_url="http://api", transport=httpx.MockTransport(FakeApi(files)))
    rollout = ModelRollout(box, client, blocked / "models")
    rollout.assign(_assigned(files))
    assert not rollout.step() and "cannot write" in rollout.error and box.manifest.version == "1"
    shutil.rmtree(tmp_path / "state", ignore_errors=True)


def test_an_api_away_during_a_rollout_leaves_the_box_on_its_model_until_it_is_back(box, tmp_path):
    files = _model_files(tmp_path)
    api = FakeApi(files)
    away = {"links": True, "files": False}

    def flaky(request: httpx.Request) -> httpx.Response:
        if away["links"] and request.url.path.endswith("/links") or away["files"] and "/files/" in request.url.path:
            raise httpx.ConnectError("connection refused", request=request)
        return api(request)

    client = httpx.Client(base_url="http://api", transport=httpx.MockTransport(flaky))
    rollout = ModelRollout(box, client, tmp_path / "state" / "models")
    rollout.assign(_assigned(files))
    assert not rollout.step() and "API unreachable" in rollout.error and box.manifest.version == "1"
    away.update(links=False, files=True)  # killed half-way: the links came, the files do not
    assert not rollout.step() and "download of manifest.yaml failed (ConnectError" in rollout.error
    assert box.manifest.version == "1"
    away["files"] = False
    assert rollout.step() and rollout.error is None and box.manifest.version == "2"


def test_a_withdrawn_assignment_takes_the_box_back_to_its_yaml_model(box, tmp_path):
    files = _model_files(tmp_path)
    rollout = _rollout(box, FakeApi(files), tmp_path)
    rollout.assign(None)
    assert not rollout.step() and box.scheduler.swaps == 0  # never switched: nothing to go back from
    rollout.assign(_assigned(files))
    assert rollout.step() and box.manifest.version == "2"

    rollout.assign(None)  # the admin withdrew it (streetwatch model unassign)
    assert rollout.step() and rollout.error is None
    assert (box.manifest.name, box.manifest.version, box.manifest.path) == ("streetwatch-demo", "1", DEMO)
    assert box.scheduler.swaps == 2 and box.detector.manifest.version == "1"
    assert not rollout.step() and box.scheduler.swaps == 2  # home: nothing more to do

    rollout.assign(_assigned(files))  # assigned again: its download is still there
    assert rollout.step() and box.manifest.version == "2"
    rollout.loader = lambda m: (_ for _ in ()).throw(MemoryError("no room for a second copy"))
    rollout.assign(None)
    assert not rollout.step() and box.manifest.version == "2"
    assert "did not come back: MemoryError: no room for a second copy" in rollout.error
    assert rollout.error.endswith("still running streetwatch-demo v2")
