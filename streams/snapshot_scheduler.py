"""Grab a picture from each snapshot camera when its frame is due: thousands of cameras, a few
threads, no connection held between grabs.

* **Spread**: camera k's first grab is at phase frac(g·φ) of its interval, g = k // group
  (φ the golden ratio): any number of cameras, added at once after a restart or one by one,
  land evenly over the interval instead of all at once. Cameras come in groups of `group`
  (the inference batch size) sharing a phase, so their pictures reach the model together
  and fill a batch.
* **A fixed grid**: after a good grab the next is due one interval after the last *due* time
  (not after the grab ended), so a camera keeps its phase and its rate.
* **Limits**: at most `max_concurrent` grabs at once over all cameras, and never two of one
  camera: its next grab is only scheduled once the last one ended. While the inference queue
  holds more than `queue_limit` frames, no grab starts: an overloaded box analyses fresh
  pictures less often rather than stale ones.
* **Faults** (streams/grab.py): a missed grab (no answer, no keyframe) makes the camera
  `reconnecting`, two in a row `stalled`; a refusal (401, 404, HTML, bad JPEG) `failed` at
  once. Each is logged (again only when the message changes, or after 10 minutes) and
  counted per reason. A failing camera backs off: its interval, then doubling, up to
  `backoff_max_s`, with jitter; one good grab puts it back on its grid.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import random
import threading
import time
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Callable

from streams.camera import CameraHealth
from streams.grab import GrabError, Grabber
from streams.health import quantiles
from streams.rtsp import Frame

log = logging.getLogger("streetwatch.streams")
GOLDEN = (math.sqrt(5) - 1) / 2
_RELOG_S = 600.0


@dataclass
class _Camera:
    name: str
    grabber: Grabber
    interval_s: float
    mode: str
    due: float  # monotonic time of the grab scheduled (or running) now
    health: CameraHealth = field(default_factory=CameraHealth)
    in_flight: bool = False
    removed: bool = False
    misses: int = 0  # failed grabs in a row
    grabs: int = 0
    failures: Counter = field(default_factory=Counter)  # reason → count
    grab_seconds: deque = field(default_factory=lambda: deque(maxlen=30))
    logged: tuple[str, float] | None = None  # (message, monotonic) of the last failure logged


class SnapshotCamera:
    """What the pipeline keeps of a snapshot camera: the same face as a CameraWorker (health,
    stop) plus `report()`, the snapshot figures for /healthz and /metrics."""

    def __init__(self, scheduler: "SnapshotScheduler", name: str):
        self._scheduler, self.name = scheduler, name

    @property
    def health(self) -> CameraHealth:
        return self._scheduler.health(self.name)

    def report(self) -> dict:
        return self._scheduler.report(self.name)

    def start(self) -> None:
        pass  # scheduled from the moment it was added

    def stop(self, timeout: float = 10) -> bool:
        self._scheduler.remove(self.name)
        return True

    def is_alive(self) -> bool:
        return not self._scheduler.is_removed(self.name)


class SnapshotScheduler:
    def __init__(self, on_frame: Callable[[str, Frame], None], max_concurrent: int = 64, group: int = 8,
                 backoff_max_s: float = 300.0, queue_depth: Callable[[], int] | None = None,
                 queue_limit: int | None = None, clock: Callable[[], float] = time.monotonic):
        if max_concurrent < 1 or group < 1:
            raise ValueError("max_concurrent and group must be at least 1")
        self.on_frame, self.max_concurrent, self.group = on_frame, max_concurrent, group
        self.backoff_max_s = backoff_max_s
        self.queue_depth, self.queue_limit = queue_depth, queue_limit
        self.clock = clock
        self._cams: dict[str, _Camera] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._seq = itertools.count()
        self._added = 0
        self._running = 0
        self.most_in_flight = 0  # the most grabs at once so far (the tests' and the benchmark's check)
        self.held_for_queue = 0  # dispatch rounds held back by a full inference queue
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_concurrent, thread_name_prefix="snapshot")
        self._thread: threading.Thread | None = None

    # -- cameras -------------------------------------------------------------------------------
    def add(self, name: str, grabber: Grabber, interval_s: float, mode: str = "snapshot") -> SnapshotCamera:
        if not interval_s > 0:
            raise ValueError(f"camera {name}: interval_s must be positive")
        with self._cond:
            if name in self._cams and not self._cams[name].removed:
                raise ValueError(f"camera {name} is already scheduled")
            phase = ((self._added // self.group) * GOLDEN) % 1.0
            self._added += 1
            cam = _Camera(name, grabber, interval_s, mode, self.clock() + phase * interval_s)
            self._cams[name] = cam
            self._push(cam)
        return SnapshotCamera(self, name)

    def remove(self, name: str) -> None:
        with self._cond:
            cam = self._cams.pop(name, None)
            if cam is not None:
                cam.removed = True
                cam.health = replace(cam.health, state="stopped")
            self._cond.notify_all()
        if cam is not None:
            cam.grabber.close()

    def is_removed(self, name: str) -> bool:
        with self._cond:
            return name not in self._cams

    def health(self, name: str) -> CameraHealth:
        with self._cond:
            cam = self._cams.get(name)
            return cam.health if cam is not None else CameraHealth(state="stopped")

    def report(self, name: str) -> dict:
        with self._cond:
            cam = self._cams.get(name)
            if cam is None:
                return {}
            return {"mode": cam.mode, "grabs": cam.grabs, "grab_failures": dict(cam.failures),
                    "misses_in_a_row": cam.misses, "grab_s": quantiles(list(cam.grab_seconds)),
                    "next_grab_in_s": round(max(0.0, cam.due - self.clock()), 3) if not cam.in_flight else 0.0}

    def stats(self) -> dict:
        with self._cond:
            return {"cameras": len(self._cams), "in_flight": self._running, "max_concurrent": self.max_concurrent,
                    "most_in_flight": self.most_in_flight, "held_for_queue": self.held_for_queue}

    def due_times(self) -> dict[str, float]:
        """Each camera's next due time (monotonic): the spreading tests read it."""
        with self._cond:
            return {n: c.due for n, c in self._cams.items()}

    # -- running ---------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._dispatch, name="snapshot-scheduler", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        # Grabs in flight end within their own timeouts; their results are dropped.
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _push(self, cam: _Camera) -> None:
        heapq.heappush(self._heap, (cam.due, next(self._seq), cam.name))
        self._cond.notify_all()

    def _queue_full(self) -> bool:
        if self.queue_depth is None or self.queue_limit is None:
            return False
        return self.queue_depth() > self.queue_limit

    def _dispatch(self) -> None:
        with self._cond:
            while not self._stop.is_set():
                if not self._heap:
                    self._cond.wait(1.0)
                    continue
                due, _, name = self._heap[0]
                wait = due - self.clock()
                if wait > 0:
                    self._cond.wait(min(wait, 1.0))
                    continue
                if self._running >= self.max_concurrent:
                    self._cond.wait(0.5)  # a grab ending notifies
                    continue
                if self._queue_full():
                    self.held_for_queue += 1
                    self._cond.wait(0.05)
                    continue
                heapq.heappop(self._heap)
                cam = self._cams.get(name)
                if cam is None or cam.due != due or cam.in_flight:
                    continue  # removed, or a stale entry
                cam.in_flight = True
                self._running += 1
                self.most_in_flight = max(self.most_in_flight, self._running)
                try:
                    self._pool.submit(self._grab, cam)
                except RuntimeError:  # the pool is shut down: stopping
                    return

    def _grab(self, cam: _Camera) -> None:
        started = self.clock()
        image, error = None, None
        try:
            image = cam.grabber.grab()
        except GrabError as exc:
            error = exc
        except Exception as exc:  # a bug or a library surprise: the camera goes on, the log says what
            log.exception("camera %s: snapshot grab failed unexpectedly", cam.name)
            error = GrabError("error", "missed", f"unexpected {type(exc).__name__}: {exc}")
        ended = self.clock()
        frame = Frame.from_image(image, time.time()) if image is not None else None
        with self._cond:
            self._running -= 1
            cam.in_flight = False
            cam.grab_seconds.append(ended - started)
            if not cam.removed:
                if error is None:
                    self._succeeded(cam, ended)
                else:
                    self._failed(cam, error, ended)
                self._push(cam)
            self._cond.notify_all()
        if frame is not None and not cam.removed:
            try:
                self.on_frame(cam.name, frame)
            except Exception:  # the consumer's bug must not stop the grabs
                log.exception("camera %s: frame handler failed", cam.name)

    def _succeeded(self, cam: _Camera, now: float) -> None:
        if cam.health.state in ("reconnecting", "stalled", "failed"):
            log.info("camera %s: snapshot grabbed again after %d failed grab(s)", cam.name, cam.misses)
        elif cam.grabs == 0:
            log.info("camera %s: first snapshot grabbed", cam.name)
        cam.grabs += 1
        cam.misses, cam.logged = 0, None
        h = cam.health
        cam.health = replace(h, state="streaming", last_frame_at=time.time(), frames_decoded=h.frames_decoded + 1,
                             frames_sampled=h.frames_sampled + 1)
        # The next point of the camera's grid after now: late grabs skip, they do not pile up.
        steps = max(1, math.ceil((now - cam.due) / cam.interval_s))
        cam.due += steps * cam.interval_s

    def _failed(self, cam: _Camera, error: GrabError, now: float) -> None:
        cam.misses += 1
        cam.failures[error.reason] += 1
        if error.kind == "refused":
            state = "failed"
        else:
            state = "stalled" if cam.misses >= 2 else "reconnecting"
        cam.health = replace(cam.health, state=state, last_error=str(error), reconnects=cam.health.reconnects + 1)
        # The next try: one interval after a first miss (a second miss makes it `stalled` on
        # time), then doubling up to the cap, jittered so cameras behind one dead switch drift apart.
        wait = cam.interval_s * 2 ** min(cam.misses - 1, 20)
        wait = min(max(cam.interval_s, self.backoff_max_s), wait)
        if cam.misses > 1:
            wait *= random.uniform(0.75, 1.0)
        cam.due = now + max(wait, 0.1)
        message = str(error)
        if cam.logged is None or cam.logged[0] != message or now - cam.logged[1] >= _RELOG_S:
            cam.logged = (message, now)
            log.warning("camera %s: %s grab (%s): %s; %s, next try in %.0fs", cam.name,
                        "refused" if error.kind == "refused" else "missed", error.reason, message, state,
                        cam.due - now)
