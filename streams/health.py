"""The edge's /healthz document: per camera, what its capture thread and the analysis saw.

Built when asked from counters the stages already keep: the capture thread's CameraHealth
(streams/camera.py), the scheduler's reused/replaced frames, the pipeline's analysis times.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # streams.camera imports PyAV, which only live cameras need
    from streams.camera import CameraHealth


def quantiles(values: Sequence[float]) -> dict[str, float | None]:
    if len(values) == 0:
        return {"median": None, "p95": None}
    arr = np.asarray(values, dtype=float)
    return {"median": round(float(np.median(arr)), 3), "p95": round(float(np.percentile(arr, 95)), 3)}


def camera_report(capture: CameraHealth | None, frames_analysed: int, events: int, analysed_at: Sequence[float],
                  latencies: Sequence[float], reused: int, replaced: int) -> dict:
    """One camera's entry; `capture` is None for a camera with no capture thread (stopped)."""
    times = list(analysed_at)
    return {
        "state": capture.state if capture else "stopped",
        "last_frame_at": capture.last_frame_at if capture else None,  # time.time() of its last frame
        "last_error": capture.last_error if capture else None,
        "reconnects": capture.reconnects if capture else 0,
        "frames_decoded": capture.frames_decoded if capture else 0,
        "corrupt_packets": capture.corrupt_packets if capture else 0,
        "packets_lost": capture.packets_lost if capture else 0,
        "frames_sampled": capture.frames_sampled if capture else 0,
        "frames_analysed": frames_analysed,
        "frames_reused": reused,
        "frames_replaced": replaced,
        "events": events,
        "analysis_interval_s": quantiles(np.diff(times)) if len(times) > 1 else quantiles([]),
        "latency_s": quantiles(list(latencies)),
    }


def edge_report(cameras: dict[str, dict], queue_depth: int, outbox: dict, sent: int, rejected: int,
                dropped_frames: int) -> dict:
    """The whole document: "ok" only while every camera streams."""
    states = {c["state"] for c in cameras.values()}
    return {
        "status": "ok" if states <= {"streaming"} else "degraded",
        "cameras": cameras,
        "queue_depth": queue_depth,
        "outbox": outbox,
        "pending_events": outbox["events"],
        "events_sent": sent,
        "events_rejected": rejected,
        "dropped_frames": dropped_frames,
    }
