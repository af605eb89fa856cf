"""The box's heartbeat: every `api.heartbeat_s` (30 s) it tells the API what it runs and how
each camera is (POST /api/v1/boxes/{box_id}/heartbeat, api/heartbeats.py).

Built from what /healthz already shows (pipeline.health()), so the API and a person at the box
see the same states. The first heartbeat goes out at start, before any event: the API lets a
box's key speak only for the cameras the box has declared (api/box_binding.py).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from datetime import datetime, timezone
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import httpx

from api.fleet_schemas import CameraReport, HeartbeatIn, ModelInfo
from api.keepalive import CLIENT_KEEP_ALIVE_S
from streams.config import EdgeConfig

log = logging.getLogger("streetwatch.edge")

# /healthz states → the heartbeat's. `starting` is a camera not yet read: as good as
# reconnecting; `stopped` is a camera of the config with no reader yet (the box is starting) or
# any more (it is stopping). A camera switched off in the config is `disabled`.
STATES = {"streaming": "streaming", "reconnecting": "reconnecting", "stalled": "stalled", "failed": "failed",
          "starting": "reconnecting", "stopped": "reconnecting"}


@lru_cache(maxsize=8)
def file_sha256(path: Path) -> str | None:
    try:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()
    except OSError:
        return None


def software_version() -> str:
    try:
        return metadata.version("streetwatch")
    except metadata.PackageNotFoundError:
        return "0+unknown"


class HeartbeatBuilder:
    """Turns health documents into heartbeats; remembers the last one for frames per second."""

    def __init__(self, config: EdgeConfig):
        self.config = config
        self._last: tuple[float, dict[str, int]] | None = None  # (monotonic, frames analysed per camera)

    def build(self, health: dict[str, Any], model: ModelInfo | None, model_error: str | None = None,
              now: float | None = None) -> HeartbeatIn:
        now = time.monotonic() if now is None else now
        analysed = {name: cam.get("frames_analysed", 0) for name, cam in health.get("cameras", {}).items()}
        since, before = self._last if self._last is not None else (None, {})
        self._last = (now, analysed)
        cameras = []
        for cam in self.config.cameras:
            seen = health.get("cameras", {}).get(cam.name)
            state = STATES.get(seen["state"], "reconnecting") if seen else "disabled"
            fps = 0.0
            if seen and since is not None and now > since:
                fps = max(0, analysed[cam.name] - before.get(cam.name, 0)) / (now - since)
            last_frame = seen.get("last_frame_at") if seen else None
            cameras.append(CameraReport(
                name=cam.name, state=state, fps=round(fps, 3),
                last_frame_at=datetime.fromtimestamp(last_frame, timezone.utc) if last_frame else None,
                damaged_packets=seen.get("corrupt_packets", 0) if seen else 0,
                grid_id=cam.grid_id, lat=cam.lat, lon=cam.lon))
        return HeartbeatIn(software_version=software_version(), interval_s=self.config.api.heartbeat_s, model=model,
                           model_error=model_error, outbox_depth=health.get("pending_events", 0), cameras=cameras)


class HeartbeatSender:
    """A thread that posts a heartbeat every interval; failures are logged, never fatal."""

    def __init__(self, config: EdgeConfig, health: Callable[[], dict[str, Any]],
                 model: Callable[[], tuple[ModelInfo | None, str | None]], client: httpx.Client | None = None):
        assert config.api.box_id, "a heartbeat needs api.box_id"
        self.config, self.health, self.model = config, health, model
        self.builder = HeartbeatBuilder(config)
        headers = {"Authorization": f"Bearer {config.api.key}"} if config.api.key else {}
        # Keep the connection from one heartbeat to the next (the server keeps it
        # SERVER_KEEP_ALIVE_S): httpx's own 5 s expiry made every heartbeat a new connection.
        self.client = client or httpx.Client(base_url=config.api.url, headers=headers, timeout=config.api.timeout_s,
                                             limits=httpx.Limits(max_connections=1,
                                                                 keepalive_expiry=CLIENT_KEEP_ALIVE_S))
        self.path = f"/api/v1/boxes/{config.api.box_id}/heartbeat"
        self.sent = self.failed = 0
        self.last_status: int | None = None
        self._last_complaint: object = 200
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self) -> int | None:
        """Send one heartbeat now; the HTTP status, or None when the API could not be reached."""
        model, error = self.model()
        body = self.builder.build(self.health(), model, error).model_dump(mode="json")
        try:
            resp = self.client.post(self.path, json=body)
        except httpx.HTTPError as exc:
            self.failed += 1
            self._complain(None, f"heartbeat: API unreachable ({exc.__class__.__name__}); retrying in "
                                 f"{self.config.api.heartbeat_s:g} s")
            self.last_status = None
            return None
        if resp.status_code == 200:
            self.sent += 1
            self._last_complaint = 200
        else:
            self.failed += 1
            what = "a config error: the key must be made for this box (create-key --box)" \
                if resp.status_code in (401, 403) else "refused"
            self._complain(resp.status_code, f"heartbeat: {resp.status_code} from the API ({what}): {resp.text[:300]}")
        self.last_status = resp.status_code
        return resp.status_code

    def _complain(self, status: int | None, message: str) -> None:
        # Once per kind of failure in a row, not every 30 s: the log must stay readable on a
        # long outage.
        if status != self._last_complaint:
            log.error(message)
        self._last_complaint = status

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.beat()
            except Exception:  # the thread must outlive whatever a health document holds
                log.exception("heartbeat failed")
            self._stop.wait(self.config.api.heartbeat_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.client.close()


def running_model(manifest: Any) -> ModelInfo:
    """Name, version and the weights' sha256 of the model the box runs."""
    return ModelInfo(name=manifest.name[:100], version=str(manifest.version)[:100],
                     sha256=file_sha256(manifest.weights_path))


def start_heartbeat(pipeline: Any, model_error: Callable[[], str | None] = lambda: None) -> HeartbeatSender:
    """The running pipeline's heartbeat thread (streams/pipeline.py starts it first thing);
    `model_error` says why the box is not on its assigned model (streams/model_rollout.py)."""
    sender = HeartbeatSender(pipeline.config, pipeline.health,
                             lambda: (running_model(pipeline.manifest), model_error()))
    sender.start()
    return sender
