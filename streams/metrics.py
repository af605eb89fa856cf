"""Prometheus metrics of the edge, and the small HTTP server for /metrics and /healthz.

Counters that the pipeline already keeps (per-camera frames, reconnects, outbox size) are
read at scrape time by a collector, so the hot paths do not pay for a second set of counters;
latencies and batch sizes are histograms observed as they happen. Each pipeline has its own
registry, so several pipelines (tests) never clash.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

log = logging.getLogger("streetwatch.edge")

STATES = ("starting", "streaming", "stalled", "reconnecting", "failed", "stopped")


class EdgeMetrics:
    def __init__(self, snapshot: Callable[[], dict]):
        """`snapshot()` returns the pipeline's health() dict, read at each scrape."""
        self.registry = CollectorRegistry(auto_describe=True)
        self.inference_seconds = Histogram(
            "streetwatch_inference_seconds", "Model time per batch", registry=self.registry,
            buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2))
        self.batch_size = Histogram("streetwatch_batch_size", "Frames per model call", registry=self.registry,
                                    buckets=(1, 2, 4, 8, 16, 32, 64))
        self.latency_seconds = Histogram(
            "streetwatch_frame_latency_seconds", "Frame decoded → detections tracked", registry=self.registry,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10))
        self.registry.register(_Collector(snapshot))

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.inference_seconds.observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _Collector:
    def __init__(self, snapshot: Callable[[], dict]):
        self.snapshot = snapshot

    def describe(self):
        return []  # names are known only at scrape time; no clash checks needed

    def collect(self):
        h = self.snapshot()
        per_camera = {
            "frames_decoded": CounterMetricFamily("streetwatch_frames_decoded", "Frames decoded", labels=["camera"]),
            "frames_analysed": CounterMetricFamily("streetwatch_frames_analysed", "Frames analysed (model or gate)",
                                                   labels=["camera"]),
            "frames_reused": CounterMetricFamily("streetwatch_frames_gated", "Frames answered by the change gate",
                                                 labels=["camera"]),
            "frames_replaced": CounterMetricFamily("streetwatch_frames_dropped", "Frames replaced by a newer one "
                                                   "before inference", labels=["camera"]),
            "corrupt_packets": CounterMetricFamily("streetwatch_corrupt_packets", "Damaged packets skipped "
                                                   "(each spoils a frame, not the camera)", labels=["camera"]),
            "packets_lost": CounterMetricFamily("streetwatch_rtp_packets_lost", "RTP packets missing from the "
                                                "sequence (own RTSP client only)", labels=["camera"]),
            "reconnects": CounterMetricFamily("streetwatch_camera_reconnects", "Connection attempts after the first",
                                              labels=["camera"]),
            "events": CounterMetricFamily("streetwatch_events_confirmed", "Events confirmed", labels=["camera"]),
        }
        state = GaugeMetricFamily("streetwatch_camera_state", "1 for the camera's current state",
                                  labels=["camera", "state"])
        for name, cam in h["cameras"].items():
            for key, family in per_camera.items():
                family.add_metric([name], cam.get(key, 0))
            for s in STATES:
                state.add_metric([name, s], 1.0 if cam["state"] == s else 0.0)
        yield from per_camera.values()
        yield state
        yield from _snapshot_families(h)
        yield GaugeMetricFamily("streetwatch_queue_depth", "Frames waiting for inference", value=h["queue_depth"])
        box = h["outbox"]
        yield GaugeMetricFamily("streetwatch_outbox_events", "Events waiting in the outbox", value=box["events"])
        yield GaugeMetricFamily("streetwatch_outbox_bytes", "Evidence bytes in the outbox", value=box["bytes"])
        yield CounterMetricFamily("streetwatch_outbox_dropped_images", "Evidence images dropped for the disk cap",
                                  value=box["dropped_images"])
        yield CounterMetricFamily("streetwatch_events_sent", "Events acknowledged by the API", value=h["events_sent"])
        yield CounterMetricFamily("streetwatch_events_rejected", "Events the API refused", value=h["events_rejected"])


def _snapshot_families(h: dict):
    """Snapshot cameras' grabs and failed grabs by reason (streams/grab.py), and the scheduler's load."""
    grabs = CounterMetricFamily("streetwatch_snapshot_grabs", "Pictures grabbed (snapshot cameras)", labels=["camera"])
    failures = CounterMetricFamily("streetwatch_snapshot_failures", "Failed grabs by reason: timeout, unreachable, "
                                   "no_keyframe, unauthorized, http_status, not_jpeg, empty, undecodable, "
                                   "rtsp_refused, error", labels=["camera", "reason"])
    for name, cam in h["cameras"].items():
        if "grabs" in cam:
            grabs.add_metric([name], cam["grabs"])
            for reason, count in cam.get("grab_failures", {}).items():
                failures.add_metric([name, reason], count)
    yield grabs
    yield failures
    snap = h.get("snapshots")
    if snap:
        yield GaugeMetricFamily("streetwatch_snapshot_in_flight", "Grabs running now", value=snap["in_flight"])
        yield CounterMetricFamily("streetwatch_snapshot_held_for_queue", "Dispatch rounds held back by a full "
                                  "inference queue", value=snap["held_for_queue"])


class EdgeHttpServer:
    """GET /healthz (JSON: per-camera state and figures) and GET /metrics (Prometheus text)."""

    def __init__(self, host: str, port: int, health: Callable[[], dict], metrics: EdgeMetrics):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                path = self.path.split("?", 1)[0]
                try:
                    if path == "/metrics":
                        body, ctype = metrics.exposition(), CONTENT_TYPE_LATEST
                    elif path == "/healthz":
                        body, ctype = json.dumps(health()).encode(), "application/json"
                    else:
                        self.send_error(404, "try /healthz or /metrics")
                        return
                except Exception:
                    log.exception("edge http: %s failed", path)
                    self.send_error(500)
                    return
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:  # scrapes every few seconds would flood the log
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.host, self.port = host, self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="edge-http", daemon=True)
        outer._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
