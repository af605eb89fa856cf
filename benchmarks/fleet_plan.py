"""What `streetwatch bench fleet` sends, planned ahead: when each box heartbeats, and which of
its cameras are down at that moment.

Boxes heartbeat on a fixed grid with phases spread evenly over the interval (500 boxes at 30 s:
one every 60 ms, ≈17/s), as a fleet restarted at random times settles into. A few cameras go
down each minute (uniformly in time, on cameras drawn without replacement) and come back
after `outage_s`, so every outage is two state changes once it spans a heartbeat. The runner
compares the changes it sent with the ones the API says it recorded.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from dataclasses import dataclass

DOWN_STATES = ("reconnecting", "stalled", "failed")


def send_times(boxes: int, interval: float, start: float, end: float) -> list[tuple[float, int]]:
    """(time, box) of every heartbeat in [start, end), in time order: box i at
    start + i·interval/boxes, then every interval."""
    if boxes < 1 or interval <= 0:
        raise ValueError("at least one box and a positive interval")
    step = interval / boxes
    times = []
    for box in range(boxes):
        at = start + box * step
        while at < end:
            times.append((at, box))
            at += interval
    times.sort()
    return times


@dataclass(frozen=True)
class Outage:
    box: int
    camera: int
    start: float  # seconds from the measured window's start
    end: float
    state: str  # what the box reports meanwhile


def plan_outages(rng: random.Random, boxes: int, cameras: int, per_minute: float, outage_s: float,
                 seconds: float) -> list[Outage]:
    """Outages at `per_minute` starting uniformly from outage_s before the window to its end,
    each on its own camera, lasting outage_s: the window sees cameras come back as often as
    go down, as a fleet's steady state does (outages only from its start would not return)."""
    count = round(per_minute * (seconds + outage_s) / 60)
    if count > boxes * cameras:
        raise ValueError(f"{count} outages for {boxes * cameras} cameras: each outage needs its own camera")
    picked = rng.sample(range(boxes * cameras), count)
    return sorted((Outage(box=n // cameras, camera=n % cameras, start=(start := rng.uniform(-outage_s, seconds)),
                          end=start + outage_s, state=rng.choice(DOWN_STATES)) for n in picked),
                  key=lambda o: o.start)


class FleetStates:
    """Which cameras of a box are down at a time (the others stream)."""

    def __init__(self, outages: list[Outage]):
        self._by_box: dict[int, list[Outage]] = {}
        for outage in sorted(outages, key=lambda o: o.start):
            self._by_box.setdefault(outage.box, []).append(outage)
        self._starts = {box: [o.start for o in found] for box, found in self._by_box.items()}

    def down(self, box: int, at: float) -> dict[int, str]:
        """{camera: its state} for the box's cameras in an outage at `at`."""
        found = self._by_box.get(box)
        if not found:
            return {}
        begun = found[:bisect_right(self._starts[box], at)]
        return {o.camera: o.state for o in begun if at < o.end}


def changed(before: dict[int, str], after: dict[int, str]) -> int:
    """Cameras whose reported state differs between two heartbeats (absent: streaming)."""
    return sum(before.get(c, "streaming") != after.get(c, "streaming") for c in before.keys() | after.keys())
