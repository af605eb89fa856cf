"""The snapshot scheduler with fake grabbers: spreading, the connection cap, one grab in flight
per camera, backoff and the fault states, and holding back while inference is behind."""

from __future__ import annotations

import threading
import time
from collections import Counter

import numpy as np
import pytest

from streams.grab import GrabError
from streams.snapshot_scheduler import SnapshotScheduler
from tests.streams.helpers import wait_for

IMAGE = np.zeros((36, 64, 3), np.uint8)


class FakeGrabber:
    def __init__(self, seconds: float = 0.0, error: GrabError | None = None):
        self.seconds, self.error = seconds, error
        self.calls = 0
        self.running = 0
        self.most_running = 0
        self._lock = threading.Lock()

    def grab(self) -> np.ndarray:
        with self._lock:
            self.calls += 1
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        try:
            time.sleep(self.seconds)
            if self.error is not None:
                raise self.error
            return IMAGE
        finally:
            with self._lock:
                self.running -= 1

    def close(self) -> None:
        pass


class Frames:
    def __init__(self):
        self.by_camera: Counter[str] = Counter()

    def __call__(self, camera, frame) -> None:
        assert frame.image.shape == IMAGE.shape
        self.by_camera[camera] += 1


def test_first_grabs_are_spread_over_the_interval_in_batch_sized_groups():
    sched = SnapshotScheduler(Frames(), group=8, clock=lambda: 1000.0)
    for i in range(1000):
        sched.add(f"c{i}", FakeGrabber(), interval_s=30.0)
    offsets = np.array(sorted(t - 1000.0 for t in sched.due_times().values()))
    assert offsets.min() >= 0 and offsets.max() < 30
    # 125 groups of 8 over 30 s: evenly, 33 cameras a second; no second of the interval holds
    # more than twice that (a restart is no thundering herd), none is left empty
    per_second = np.bincount(offsets.astype(int), minlength=30)
    assert per_second.max() <= 2 * 1000 / 30 and per_second.min() > 0, per_second
    # cameras of one group share a phase, so their pictures fill one inference batch
    assert len(set(offsets)) == 125


def test_cameras_added_one_by_one_land_between_the_earlier_ones():
    sched = SnapshotScheduler(Frames(), group=1, clock=lambda: 0.0)
    for i in range(10):
        sched.add(f"c{i}", FakeGrabber(), interval_s=10.0)
    phases = sorted(sched.due_times().values())
    assert max(np.diff([*phases, phases[0] + 10.0])) < 2.5  # no gap much over the even 1 s


def test_connections_are_capped_and_no_camera_has_two_grabs_at_once():
    frames = Frames()
    sched = SnapshotScheduler(frames, max_concurrent=4, group=1)
    # grabs take 3 intervals: each camera's next grab must wait for its last one
    grabbers = {f"c{i}": FakeGrabber(seconds=0.3) for i in range(12)}
    for name, g in grabbers.items():
        sched.add(name, g, interval_s=0.1)
    sched.start()
    try:
        assert wait_for(lambda: all(g.calls >= 2 for g in grabbers.values()), 15)
    finally:
        sched.stop()
    assert sched.most_in_flight == 4
    assert all(g.most_running == 1 for g in grabbers.values())
    assert all(frames.by_camera[n] >= 1 for n in grabbers)


def test_a_hanging_camera_costs_the_others_nothing():
    frames = Frames()
    sched = SnapshotScheduler(frames, max_concurrent=2, group=1)
    hanging = FakeGrabber(seconds=3.0, error=GrabError("timeout", "missed", "no answer within 3s"))
    sched.add("hang", hanging, interval_s=0.2)
    for i in range(3):
        sched.add(f"ok{i}", FakeGrabber(), interval_s=0.2)
    sched.start()
    try:
        time.sleep(2.0)
        counts = {n: frames.by_camera[n] for n in ("ok0", "ok1", "ok2")}
    finally:
        sched.stop()
    # one slot is held by the hanging grab, the other serves the three cameras at their rate
    assert all(c >= 6 for c in counts.values()), counts
    assert hanging.calls == 1


def test_missed_grabs_go_reconnecting_then_stalled_and_back_off():
    now = [0.0]
    sched = SnapshotScheduler(Frames(), group=1, backoff_max_s=100, clock=lambda: now[0])
    dead = FakeGrabber(error=GrabError("unreachable", "missed", "cannot connect (Connection refused)"))
    cam = sched.add("dead", dead, interval_s=10.0)
    record = sched._cams["dead"]
    waits, states = [], []
    for _ in range(6):
        now[0] = record.due
        record.in_flight = True
        sched._running += 1
        sched._grab(record)
        states.append(cam.health.state)
        waits.append(record.due - now[0])
    assert states[:3] == ["reconnecting", "stalled", "stalled"]
    assert cam.health.last_error == "cannot connect (Connection refused)"
    assert waits[0] == 10.0  # the second try comes on time: stalled after two missed grabs
    assert 15 <= waits[1] <= 20 and 30 <= waits[2] <= 40  # then doubling, jittered
    assert all(w <= 100 for w in waits) and waits[-1] >= 75  # up to the cap
    assert cam.report()["grab_failures"] == {"unreachable": 6}
    dead.error = None  # it comes back
    now[0] = record.due
    record.in_flight = True
    sched._running += 1
    sched._grab(record)
    assert cam.health.state == "streaming" and record.misses == 0
    assert record.due - now[0] == 10.0  # back on its interval


def test_a_refusal_is_failed_at_once():
    sched = SnapshotScheduler(Frames(), group=1)
    cam = sched.add("pw", FakeGrabber(error=GrabError("unauthorized", "refused", "401 Unauthorized")), 0.1)
    sched.start()
    try:
        assert wait_for(lambda: cam.health.state == "failed", 5)
    finally:
        sched.stop()
    assert cam.report()["grab_failures"]["unauthorized"] >= 1


def test_no_grab_starts_while_the_inference_queue_is_full():
    frames = Frames()
    depth = [100]
    sched = SnapshotScheduler(frames, group=1, queue_depth=lambda: depth[0], queue_limit=32)
    sched.add("c", FakeGrabber(), interval_s=0.05)
    sched.start()
    try:
        time.sleep(0.5)
        assert frames.by_camera["c"] == 0 and sched.held_for_queue > 0
        depth[0] = 0
        assert wait_for(lambda: frames.by_camera["c"] >= 3, 5)
    finally:
        sched.stop()


def test_a_removed_camera_is_grabbed_no_more():
    frames = Frames()
    sched = SnapshotScheduler(frames, group=1)
    grabber = FakeGrabber()
    cam = sched.add("c", grabber, interval_s=0.05)
    sched.start()
    try:
        assert wait_for(lambda: grabber.calls >= 2, 5)
        cam.stop()
        calls = grabber.calls
        time.sleep(0.3)
        assert grabber.calls <= calls + 1  # at most the grab already running
        assert cam.health.state == "stopped" and not cam.is_alive()
    finally:
        sched.stop()


def test_bad_interval_is_refused():
    with pytest.raises(ValueError, match="interval_s"):
        SnapshotScheduler(Frames()).add("c", FakeGrabber(), interval_s=0)
