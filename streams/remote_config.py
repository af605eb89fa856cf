"""Zones and masks edited centrally, pulled by the box and applied without a restart.

Every `api.config_poll_s` the box asks `GET /api/v1/boxes/{box_id}/config` with the ETag it
has (a 304 costs nothing). A camera with central zones uses them instead of its YAML's; a
camera without (or whose central zones were deleted) uses its YAML's. Only the camera's
zone and mask lists are replaced: its tracker and confirmation timers go on, so an issue
being confirmed in an unchanged place is not started over. The last configuration is kept
beside the outbox, so a box restarted while the API is away keeps the central zones.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any, Callable

import httpx

from streams.config import Mask, Zone
from vision.zones import Area

log = logging.getLogger("streetwatch.edge")


def _areas(items: list[Any], scale: tuple[float, float]) -> list[Area]:
    sx, sy = scale
    return [Area.make([(x * sx, y * sy) for x, y in a.polygon], [t.value for t in a.issue_types], a.anchor, a.hours)
            for a in items]


class RemoteZones:
    def __init__(self, pipeline: Any, client: httpx.Client, box_id: str, poll_s: float, cache: Path | None,
                 on_model: Callable[[dict | None], None] | None = None):
        self.pipeline, self.client, self.poll_s, self.cache = pipeline, client, poll_s, cache
        self.on_model = on_model  # the config's `model` goes to the model rollout (streams/model_rollout.py)
        self.path = f"/api/v1/boxes/{box_id}/config"
        self.etag: str | None = None
        self.applied: dict[str, str] = {}  # camera → a fingerprint of what it runs ("yaml" or the central JSON)
        self.polls = self.changes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def load_cached(self) -> None:
        if self.cache is None or not self.cache.exists():
            return
        try:
            body = json.loads(self.cache.read_text())
            self.apply(body["cameras"])
            self._model(body)
            self.etag = body.get("etag")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("central zones: cannot read %s (%s); the YAML's zones apply until the API answers",
                        self.cache, exc)

    def poll(self) -> bool:
        """Ask the API once; True if a new configuration was applied."""
        self.polls += 1
        headers = {"If-None-Match": f'"{self.etag}"'} if self.etag else {}
        try:
            resp = self.client.get(self.path, headers=headers)
        except httpx.HTTPError as exc:
            log.warning("central zones: API unreachable (%s); keeping the current zones", exc.__class__.__name__)
            return False
        if resp.status_code == 304:
            return False
        if resp.status_code != 200:
            log.error("central zones: %d from the API: %s", resp.status_code, resp.text[:300])
            return False
        body = resp.json()
        self.apply(body["cameras"])
        self._model(body)
        self.etag = body["etag"]
        self._save(body)
        return True

    def apply(self, central: dict[str, dict]) -> None:
        for name, state in list(self.pipeline.cameras.items()):
            own = central.get(name)
            fingerprint = json.dumps(own, sort_keys=True) if own is not None else "yaml"
            if self.applied.get(name, "yaml") == fingerprint:
                continue
            if own is None:
                zones, masks, scale = list(state.config.zones.values()), state.config.masks, (1.0, 1.0)
            else:
                zones = [Zone.model_validate(z) for z in own["zones"].values()]
                masks = [Mask.model_validate(m) for m in own["masks"]]
                scale = (1.0, 1.0)
                if state.frame_size is not None and state.frame_size != (own["frame_width"], own["frame_height"]):
                    # Drawn on a snapshot of another size: the same places on this camera's frames.
                    scale = (state.frame_size[0] / own["frame_width"], state.frame_size[1] / own["frame_height"])
            # Two assignments the analysis thread reads between frames: it sees old or new lists,
            # never half of one; its tracker and confirmer stay as they are.
            state.zones, state.masks = _areas(zones, scale), _areas(masks, scale)
            self.applied[name] = fingerprint
            self.changes += 1
            log.info("camera %s: %d zone(s), %d mask(s) from %s", name, len(zones), len(masks),
                     "the API" if own is not None else "the YAML")

    def _model(self, body: dict) -> None:
        if self.on_model is not None:
            self.on_model(body.get("model"))

    def _save(self, body: dict) -> None:
        if self.cache is None:
            return
        try:
            self.cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.cache.with_name(self.cache.name + ".tmp")
            tmp.write_text(json.dumps(body))
            os.replace(tmp, self.cache)
        except OSError as exc:  # a full disk: the zones still apply, a restart falls back to the YAML
            log.warning("central zones: cannot keep a copy in %s (%s)", self.cache, exc)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="central-zones", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception:  # whatever the API answers, the box goes on with the zones it has
                log.exception("central zones: poll failed")
            self._stop.wait(self.poll_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.client.close()


def start_remote_zones(pipeline: Any, on_model: Callable[[dict | None], None] | None = None) -> RemoteZones:
    cfg = pipeline.config
    headers = {"Authorization": f"Bearer {cfg.api.key}"} if cfg.api.key else {}
    client = httpx.Client(base_url=cfg.api.url, headers=headers, timeout=cfg.api.timeout_s)
    remote = RemoteZones(pipeline, client, cfg.api.box_id, cfg.api.config_poll_s,
                         cfg.outbox.path / "central-zones.json", on_model)
    remote.load_cached()
    remote.start()
    return remote
