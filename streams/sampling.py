"""How each camera of a config is sampled: its mode, its interval, its RTSP transport.

A box may mix modes. `stream` holds the camera's stream open (streams/camera.py) and suits
issues that last seconds; `rtsp_snapshot` and `http_snapshot` fetch one picture when a frame
is due (streams/snapshot_scheduler.py) and suit issues that last minutes, at a fraction of
the CPU and memory per camera.
"""

from __future__ import annotations

from streams.config import CameraConfig, EdgeConfig

# At this interval and beyond a tracker has nothing to follow (a hawker walks 15 m between two
# frames): confirmation counts samples of the same region instead (vision/sparse_confirm.py).
SPARSE_FROM_S = 10.0


def configured_mode(cfg: EdgeConfig, cam: CameraConfig) -> str:
    return cam.mode or cfg.mode


def camera_interval(cfg: EdgeConfig, cam: CameraConfig) -> float:
    """The camera's own interval, else the shortest of the issue types it watches, else the box's."""
    if cam.sample_interval_s is not None:
        return cam.sample_interval_s
    watched = _watched_types(cam)
    per_issue = [s.sample_interval_s for t, s in cfg.issues.items()
                 if s.sample_interval_s is not None and (watched is None or t in watched)]
    return min(per_issue) if per_issue else cfg.sample_interval_s


def _watched_types(cam: CameraConfig) -> set | None:
    """The issue types the camera's zones admit; None when every type counts somewhere."""
    if not cam.zones or any(not z.issue_types for z in cam.zones.values()):
        return None
    return {t for z in cam.zones.values() for t in z.issue_types}


def camera_mode(cfg: EdgeConfig, cam: CameraConfig) -> str:
    """The mode the camera runs in. An rtsp_snapshot camera sampled more often than a
    connection costs (`snapshot.keep_session_below_s`) keeps its session: it runs as a stream."""
    mode = configured_mode(cfg, cam)
    if mode == "rtsp_snapshot" and camera_interval(cfg, cam) < cfg.snapshot.keep_session_below_s:
        return "stream"
    return mode


def is_sparse(cfg: EdgeConfig, cam: CameraConfig) -> bool:
    """Whether confirmation counts samples of a region (no tracker) rather than following tracks."""
    return camera_mode(cfg, cam) != "stream" or camera_interval(cfg, cam) >= SPARSE_FROM_S


def camera_transport(cfg: EdgeConfig, cam: CameraConfig) -> str:
    return cam.rtsp_transport or cfg.rtsp_transport
