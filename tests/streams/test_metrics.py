"""The edge's /healthz figures and /metrics exposition come from the camera workers' health:
every counter a worker keeps reaches both, under the camera's name."""

from __future__ import annotations

import re
from dataclasses import dataclass

from streams.camera import CameraHealth
from streams.config import EdgeConfig
from streams.metrics import EdgeMetrics
from streams.pipeline import EdgePipeline
from tests.streams.test_edge_faults import NoDetections, NullUploader

# CameraHealth field → the counter /metrics exposes it as
COUNTERS = {"frames_decoded": "streetwatch_frames_decoded_total", "reconnects": "streetwatch_camera_reconnects_total",
            "corrupt_packets": "streetwatch_corrupt_packets_total",
            "packets_lost": "streetwatch_rtp_packets_lost_total"}


@dataclass
class StandInWorker:
    health: CameraHealth


def sample(exposition: str, metric: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    found = re.findall(rf"^{metric}{{{re.escape(want)}}} (\S+)$", exposition, re.M)
    assert len(found) == 1, (metric, labels, found)
    return float(found[0])


def test_every_worker_counter_reaches_healthz_and_metrics():
    config = EdgeConfig.model_validate({"http": None, "cameras": [
        {"name": "gate-3", "url": "rtsp://127.0.0.1/a"}, {"name": "idle", "url": "rtsp://127.0.0.1/b"}]})
    edge = EdgePipeline(config, detector=NoDetections(), uploader=NullUploader())
    # Distinct values, so a counter wired to the wrong field shows.
    health = CameraHealth(state="stalled", frames_decoded=1200, frames_sampled=60, reconnects=2, corrupt_packets=3,
                          packets_lost=7, last_error="no packet for 6 s")
    edge._workers["gate-3"] = StandInWorker(health)  # a started pipeline has a CameraWorker here

    cams = edge.health()["cameras"]
    assert {k: cams["gate-3"][k] for k in COUNTERS} == {k: getattr(health, k) for k in COUNTERS}
    assert cams["gate-3"]["state"] == "stalled" and cams["gate-3"]["last_error"] == "no packet for 6 s"
    assert cams["gate-3"]["frames_sampled"] == 60
    # a camera without a worker (never started, or removed) reads as stopped with nothing counted
    assert cams["idle"]["state"] == "stopped" and all(cams["idle"][k] == 0 for k in COUNTERS)

    text = EdgeMetrics(edge.health).exposition().decode()
    for field, metric in COUNTERS.items():
        assert sample(text, metric, camera="gate-3") == getattr(health, field), metric
        assert sample(text, metric, camera="idle") == 0, metric
    assert sample(text, "streetwatch_camera_state", camera="gate-3", state="stalled") == 1
    assert sample(text, "streetwatch_camera_state", camera="gate-3", state="streaming") == 0
    assert sample(text, "streetwatch_camera_state", camera="idle", state="stopped") == 1


def test_healthz_is_ok_only_while_every_camera_streams_and_times_the_analysis():
    config = EdgeConfig.model_validate({"http": None, "cameras": [
        {"name": "a", "url": "rtsp://127.0.0.1/a"}, {"name": "b", "url": "rtsp://127.0.0.1/b"}]})
    edge = EdgePipeline(config, detector=NoDetections(), uploader=NullUploader())
    edge._workers = {"a": StandInWorker(CameraHealth(state="streaming")),
                     "b": StandInWorker(CameraHealth(state="streaming"))}
    edge.cameras["a"].analysed_at.extend([10.0, 12.0, 14.0, 20.0])
    edge.cameras["a"].latencies.extend([0.1, 0.3])

    report = edge.health()
    assert report["status"] == "ok"
    assert report["cameras"]["a"]["analysis_interval_s"] == {"median": 2.0, "p95": 5.6}  # gaps 2, 2, 6
    assert report["cameras"]["a"]["latency_s"]["median"] == 0.2
    # one analysed frame has no interval yet; none, no latency
    assert report["cameras"]["b"]["analysis_interval_s"] == {"median": None, "p95": None}
    assert report["cameras"]["b"]["latency_s"] == {"median": None, "p95": None}

    edge._workers["b"] = StandInWorker(CameraHealth(state="reconnecting"))
    assert edge.health()["status"] == "degraded"
    del edge._workers["b"]  # no capture thread at all: stopped, and still not ok
    assert edge.health()["status"] == "degraded"
