"""Camera verification of fixes, on the edge: does the camera still see a resolved issue?

The API lists the resolved orders of each camera (`GET /api/v1/verifications?camera=…`); the
box polls that list (it never needs an inbound connection), watches each order's region on
the frames it analyses anyway, and answers `POST /api/v1/verifications/{order_id}`:

* `present` once the issue's type is detected on the region in `min_hits` analysed frames
  (one frame could be a passer-by), and the order is reopened;
* `absent` once the region has stayed clear for the type's clear time on frames actually
  analysed (a gap longer than `max_gap_s`, a stalled camera say, starts the clear time
  again), and the order is marked verified with a before/after pair.

While the API cannot take a verdict, the watch waits (doubling, up to `max_backoff_s`)
before it renders and sends another: no blurred frame per analysed frame during an outage.

The frame sent is whatever `frame_jpeg` gives: the pipeline passes its privacy-blurred JPEG.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

import httpx

from api.geometry import iou, scale_box
from api.schemas import IssueType

log = logging.getLogger("streetwatch.edge")
Box = tuple[float, float, float, float]


@dataclass
class Watch:
    order_id: int
    issue_type: IssueType
    box: Box  # in the order's frame size
    frame_size: tuple[int, int]
    clear_seconds: float
    last_seen: float | None = None
    hits: int = 0
    last_frame: float | None = None  # when a frame of the camera was last looked at
    clear_since: float | None = None  # start of the current run of frames without the issue
    clear_frames: int = 0  # frames in that run
    retry_at: float = float("-inf")  # no verdict is sent before (the API failed the last one)
    failures: int = 0


@dataclass
class FixVerifier:
    """Watches resolved orders' regions for a set of cameras; thread-safe."""

    client: httpx.Client  # base_url set to the API, key in its headers
    cameras: list[str]
    poll_interval_s: float = 30.0
    min_hits: int = 3
    min_iou: float = 0.3
    min_clear_frames: int = 3  # an "absent" needs this many clear frames over the clear time
    max_gap_s: float = 120.0  # frames further apart than this do not make one clear run
    max_backoff_s: float = 300.0
    watches: dict[str, dict[int, Watch]] = field(default_factory=dict)
    results: list[tuple[int, str]] = field(default_factory=list)  # (order_id, result) sent, for health/metrics
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _last_poll: float = float("-inf")

    def poll(self, now: float | None = None) -> None:
        """Refresh the watch list from the API; keeps the timers of watches already running."""
        now = time.monotonic() if now is None else now
        self._last_poll = now
        for camera in self.cameras:
            try:
                resp = self.client.get("/api/v1/verifications", params={"camera": camera})
                resp.raise_for_status()
                items = resp.json()
            except (httpx.HTTPError, ValueError) as exc:  # flaky uplink, or not JSON: keep the old list
                log.warning("camera %s: cannot fetch orders to verify: %s", camera, exc)
                continue
            current = self.watches.get(camera, {})
            fresh: dict[int, Watch] = {}
            for item in items if isinstance(items, list) else []:
                try:
                    order_id, box = int(item["order_id"]), tuple(float(v) for v in item["bbox"])
                    if len(box) != 4:
                        raise ValueError(f"bbox {list(box)} is not x1, y1, x2, y2")
                    fresh[order_id] = current.get(order_id) or Watch(
                        order_id, IssueType(item["issue_type"]), box,  # type: ignore[arg-type]
                        (int(item["frame_width"]), int(item["frame_height"])), float(item["clear_seconds"]))
                except (KeyError, TypeError, ValueError) as exc:  # e.g. an issue type from a newer API
                    log.warning("camera %s: skipping an order to verify that this box cannot read (%s: %s)",
                                camera, type(exc).__name__, exc)
            with self._lock:
                self.watches[camera] = fresh

    def maybe_poll(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if now - self._last_poll >= self.poll_interval_s:
            self.poll(now)

    def observe(self, camera: str, frame_size: tuple[int, int], detections: Iterable[tuple[IssueType, Box]],
                frame_jpeg: Callable[[], bytes], now: float | None = None) -> list[tuple[int, str]]:
        """Feed one analysed frame's detections (issue type and pixel box); returns the
        verdicts sent for this frame."""
        now = time.monotonic() if now is None else now
        with self._lock:
            watches = list(self.watches.get(camera, {}).values())
        if not watches:
            return []
        detections = list(detections)
        sent: list[tuple[int, str]] = []
        for watch in watches:
            region = scale_box(watch.box, watch.frame_size, frame_size)
            gap = now - watch.last_frame if watch.last_frame is not None else 0.0
            watch.last_frame = now
            if any(t == watch.issue_type and iou(region, box) >= self.min_iou for t, box in detections):
                watch.hits += 1
                watch.last_seen, watch.clear_since, watch.clear_frames = now, None, 0
                if watch.hits >= self.min_hits and now >= watch.retry_at:
                    sent += self._send(camera, watch, "present", frame_jpeg, now)
                continue
            if watch.clear_since is None or gap > self.max_gap_s:  # a new run of clear frames
                watch.clear_since, watch.clear_frames = now, 0
            watch.clear_frames += 1
            if (now - watch.clear_since >= watch.clear_seconds and watch.clear_frames >= self.min_clear_frames
                    and now >= watch.retry_at):
                sent += self._send(camera, watch, "absent", frame_jpeg, now)
            elif watch.last_seen is not None and now - watch.last_seen > watch.clear_seconds / 2:
                watch.hits = 0  # old sightings do not add up with new ones into a verdict
        return sent

    def _send(self, camera: str, watch: Watch, result: str, frame_jpeg: Callable[[], bytes],
              now: float) -> list[tuple[int, str]]:
        try:
            resp = self.client.post(f"/api/v1/verifications/{watch.order_id}", data={"result": result},
                                    files={"frame": ("frame.jpg", frame_jpeg(), "image/jpeg")})
        except httpx.HTTPError as exc:
            self._back_off(watch, now, f"cannot send camera check ({exc})")
            return []
        if resp.status_code >= 500 or resp.status_code == 429:
            self._back_off(watch, now, f"API answered {resp.status_code} to the camera check")
            return []
        if resp.status_code >= 400:  # 409: someone reopened or closed it meanwhile; nothing left to check
            log.info("order %d: camera check not taken (%d): %s", watch.order_id, resp.status_code, resp.text[:200])
        else:
            log.info("camera %s: order %d is %s after the fix", camera, watch.order_id,
                     "still there" if result == "present" else "verified clear")
        with self._lock:
            self.watches.get(camera, {}).pop(watch.order_id, None)
            self.results.append((watch.order_id, result))
        return [(watch.order_id, result)]


    def _back_off(self, watch: Watch, now: float, why: str) -> None:
        watch.failures += 1
        wait = min(self.max_backoff_s, 5.0 * 2 ** (watch.failures - 1))
        watch.retry_at = now + wait
        log.warning("order %d: %s; trying again in %.0f s", watch.order_id, why, wait)
