"""Letterboxing, batching and decoding for the exported-graph backends, and the scheduler
that batches the newest frame of each camera (with change gating)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from streams.scheduler import InferenceScheduler, Job
from vision.detections import Detections
from vision.yolo_io import Letterbox, decode, input_shape, letterbox, make_batches

ROOT = Path(__file__).resolve().parents[2]


def test_input_shape_is_stride_aligned_rect():
    assert input_shape(720, 1280, 320) == (192, 320)
    assert input_shape(1080, 1920, 640) == (384, 640)
    assert input_shape(480, 480, 320) == (320, 320)


def test_letterbox_scales_pads_and_maps_back():
    img = np.zeros((720, 1280, 3), np.uint8)
    img[:, :, 2] = 255  # red in BGR
    chw, box = letterbox(img, (192, 320))
    assert chw.shape == (3, 192, 320) and chw.dtype == np.float32
    assert box.scale == pytest.approx(0.25) and box.pad_x == 0 and box.pad_y == 6
    assert chw[0, 100, 100] == pytest.approx(1.0)  # RGB order: red first
    assert chw[0, 0, 0] == pytest.approx(114 / 255)  # padding row


def test_make_batches_groups_by_shape_and_caps_size():
    frames = [np.zeros((720, 1280, 3), np.uint8)] * 5 + [np.zeros((480, 640, 3), np.uint8)] * 2
    batches = make_batches(frames, 320, max_batch=3)
    sizes = sorted(len(idx) for idx, _, _ in batches)
    assert sizes == [2, 2, 3]
    assert sorted(i for idx, _, _ in batches for i in idx) == list(range(7))
    for idx, tensor, boxes in batches:
        assert tensor.shape[0] == len(idx) == len(boxes)
    with pytest.raises(ValueError, match="BGR frame"):
        make_batches([np.zeros((10, 10), np.uint8)], 320, 4)


def test_decode_maps_boxes_to_frame_and_suppresses_duplicates():
    nc, anchors = 4, 6
    out = np.zeros((4 + nc, anchors), np.float32)
    # two overlapping class-2 boxes (NMS keeps the better), one class-0 box, the rest below the floor
    for a, (cx, cy, w, h, cls, score) in enumerate([(100, 60, 40, 20, 2, 0.9), (102, 61, 40, 20, 2, 0.8),
                                                    (200, 100, 20, 20, 0, 0.5), (10, 10, 5, 5, 1, 0.05)]):
        out[:4, a] = (cx, cy, w, h)
        out[4 + cls, a] = score
    box = Letterbox(scale=0.25, pad_x=0, pad_y=6, width=1280, height=720)
    dets = decode(out, box, conf=0.1)
    assert sorted(dets.class_id.tolist()) == [0, 2]
    best = dets[dets.class_id == 2]
    assert best.confidence[0] == pytest.approx(0.9)
    assert best.xyxy[0].tolist() == pytest.approx([320, 176, 480, 256])  # ((100-20)/.25, (50-6)/.25, …)


def test_onnx_backend_batch_equals_single_frames():
    from vision.detector import load_detector
    from vision.manifest import load_manifest

    manifest = load_manifest(ROOT / "models" / "streetwatch-demo")
    if manifest.export_path("onnx") is None:
        pytest.fail("demo model has no ONNX export: streetwatch model export models/streetwatch-demo")
    det = load_detector(manifest, "onnxruntime", threads=1)
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (360, 640, 3), dtype=np.uint8), rng.integers(0, 255, (480, 480, 3), dtype=np.uint8),
              rng.integers(0, 255, (360, 640, 3), dtype=np.uint8)]
    batch = det.detect_batch(frames)
    for frame, got in zip(frames, batch):
        one = det.detect(frame)
        assert np.allclose(one.xyxy, got.xyxy, atol=1e-3) and np.allclose(one.confidence, got.confidence, atol=1e-4)


class _Frame:
    def __init__(self, value: int, t: float = 0.0):
        self.image = np.full((36, 64, 3), value, np.uint8)
        self.captured_at = t


class _CountingDetector:
    def __init__(self):
        self.batches: list[int] = []

    def detect_batch(self, frames):
        self.batches.append(len(frames))
        return [Detections(np.array([[1, 1, 5, 5]]), np.array([f[0, 0, 0] / 255]), np.array([0])) for f in frames]


def test_scheduler_keeps_newest_frame_per_camera_in_arrival_order():
    det = _CountingDetector()
    seen: list[tuple[str, int]] = []
    sched = InferenceScheduler(det, lambda cam, fr, d, reused: seen.append((cam, int(fr.image[0, 0, 0]))), max_batch=2)
    sched.submit("a", _Frame(1))
    sched.submit("b", _Frame(2))
    sched.submit("a", _Frame(3))  # replaces a's older frame, keeps a's place in line
    sched.submit("c", _Frame(4))
    assert sched.depth() == 3 and sched.replaced["a"] == 1
    while sched.depth():
        sched.run(sched._take(timeout=0))
    assert seen == [("a", 3), ("b", 2), ("c", 4)]
    assert det.batches == [2, 1]


def test_scheduler_worker_batches_up_to_max_and_reports_results():
    det = _CountingDetector()
    done = threading.Event()
    results: list[str] = []

    def on_result(cam, frame, dets, reused):
        results.append(cam)
        if len(results) == 10:
            done.set()

    sched = InferenceScheduler(det, on_result, max_batch=4, batch_wait_s=0.2)
    for i in range(10):
        sched.submit(f"cam{i}", _Frame(i))
    sched.start()
    try:
        assert done.wait(10)
    finally:
        sched.stop()
    assert sorted(results) == sorted(f"cam{i}" for i in range(10))
    assert max(det.batches) <= 4 and sum(det.batches) == 10


def test_change_gate_reuses_detections_but_still_reports_the_frame():
    det = _CountingDetector()
    seen: list[tuple[float, bool, float]] = []
    sched = InferenceScheduler(det, lambda cam, fr, d, reused: seen.append((fr.captured_at, reused, float(d.confidence[0]))),
                               change_threshold=lambda cam: 2.0, max_reuse=2)
    for t, value in enumerate([100, 101, 100, 101, 180]):  # small changes, then a big one
        sched.run([Job("cam", _Frame(value, float(t)), 0.0)])
    # every frame reported with its own time (so confirmation timers advance) ...
    assert [s[0] for s in seen] == [0.0, 1.0, 2.0, 3.0, 4.0]
    # ... frames 1 and 2 reuse frame 0's detections; frame 3 runs the model (max_reuse), 4 changed
    assert [s[1] for s in seen] == [False, True, True, False, False]
    assert seen[1][2] == pytest.approx(100 / 255)
    assert sched.reused["cam"] == 2 and det.batches == [1, 1, 1]


def test_change_gate_does_not_reuse_detections_across_a_resolution_change():
    """Thumbnails all have one size, so a camera switching 1080p → 360p looked unchanged, and
    the 1080p boxes were handed on for the 360p frame (boxes off the frame, events lost)."""
    det = _CountingDetector()
    seen: list[bool] = []
    sched = InferenceScheduler(det, lambda cam, fr, d, reused: seen.append(reused), change_threshold=lambda cam: 5.0)
    big, small = _Frame(100), _Frame(100)
    big.image = np.full((1080, 1920, 3), 100, np.uint8)
    small.image = np.full((360, 640, 3), 100, np.uint8)
    for frame in (big, big, small):
        sched.run([Job("cam", frame, 0.0)])
    assert seen == [False, True, False]


class _PickyDetector(_CountingDetector):
    """Fails any batch that holds a 4-channel frame, as the letterbox does."""

    def detect_batch(self, frames):
        if any(f.shape[2] != 3 for f in frames):
            raise ValueError("expected BGR frames")
        return super().detect_batch(frames)


def test_one_cameras_bad_frame_costs_that_frame_only():
    det = _PickyDetector()
    seen: list[str] = []
    sched = InferenceScheduler(det, lambda cam, fr, d, reused: seen.append(cam), max_batch=8)
    bad = _Frame(7)
    bad.image = np.zeros((36, 64, 4), np.uint8)
    sched.run([Job("good-1", _Frame(1), 0.0), Job("bad", bad, 0.0), Job("good-2", _Frame(2), 0.0)])
    assert seen == ["good-1", "good-2"] and sched.errors == 1
    assert not sched._in_flight  # every camera may be taken again


def test_input_shape_of_a_sliver_frame_is_never_zero():
    assert min(input_shape(1, 700, 320)) >= 1 and min(input_shape(2000, 2, 320)) >= 1
    tensor, _ = letterbox(np.zeros((1, 700, 3), np.uint8), input_shape(1, 700, 320))
    assert tensor.shape[1:] == input_shape(1, 700, 320)


class _SlowDetector(_CountingDetector):
    """Records which thread ran each batch; slow enough that two batches overlap."""

    def __init__(self):
        super().__init__()
        self.threads: set[str] = set()

    def detect_batch(self, frames):
        self.threads.add(threading.current_thread().name)
        threading.Event().wait(0.02)
        return super().detect_batch(frames)


def test_two_workers_share_the_queue_but_never_run_one_camera_twice_at_once():
    dets = [_SlowDetector(), _SlowDetector()]
    lock = threading.Lock()
    running: set[str] = set()
    overlaps: list[str] = []
    order: dict[str, list[float]] = {}

    def on_result(cam, frame, d, reused):
        with lock:
            if cam in running:
                overlaps.append(cam)
            running.add(cam)
            order.setdefault(cam, []).append(frame.captured_at)
        threading.Event().wait(0.005)  # tracking takes a while: the other worker may try the camera now
        with lock:
            running.discard(cam)

    sched = InferenceScheduler(dets, on_result, max_batch=2, batch_wait_s=0)
    sched.start()
    try:
        for t in range(40):
            for cam in ("a", "b", "c"):
                sched.submit(cam, _Frame(t, float(t)))
            threading.Event().wait(0.004)
        deadline = time.monotonic() + 10
        while (sched.depth() or sched._in_flight) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        sched.stop()
    assert not overlaps
    assert all(d.batches for d in dets), "both workers ran batches"
    assert {"inference-0", "inference-1"} == dets[0].threads | dets[1].threads
    for cam, times in order.items():  # each camera's frames reach the tracker in order
        assert times == sorted(times), cam
    assert sum(sum(d.batches) for d in dets) + sum(sched.replaced.values()) == 120
