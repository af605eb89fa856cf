"""What the children of both edge benches share (benchmarks/edge_workers.py for the stream
bench at 2 s, benchmarks/sampling_workers.py for the sampling modes): measuring a process's own
CPU and RSS, the `RESULT {json}` line the parent reads, waiting for a condition, and the
uploader that throws every event away (the box is measured, not the API)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Callable


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds of process `pid` (None: this one) so far; 0 once it is gone,
    so a camera server that died shows as no CPU rather than ending the run."""
    import psutil

    try:
        t = psutil.Process(pid).cpu_times()
        return t.user + t.system
    except psutil.Error:
        return 0.0


def rss_mb() -> float:
    """This process's resident memory, MiB."""
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def emit(result: dict) -> None:
    """One step's figures to the parent, which reads stdout line by line."""
    print("RESULT " + json.dumps(result), flush=True)


def wait_for(cond: Callable[[], bool], timeout: float, poll_s: float = 0.1) -> float | None:
    """Seconds until `cond()` held (rounded to 10 ms), or None if it did not within `timeout`."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if cond():
            return round(time.monotonic() - start, 2)
        time.sleep(poll_s)
    return None


class DiscardUploader:
    """An EdgePipeline uploader that sends nothing: the benches measure the box alone."""

    sent = rejected = 0

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def submit(self, item) -> None: ...

    def pending(self) -> int:
        return 0


@dataclass(frozen=True)
class Window:
    """A measured window: when it began and ended (monotonic), and the CPU, 100 % = one core,
    of this process and of the cameras' servers over it."""

    start: float
    end: float
    cpu_percent: float
    cameras_cpu_percent: float


def measure_window(seconds: float, cameras_cpu_seconds: Callable[[], float]) -> Window:
    """Sleep through `seconds` while the box works, and say what this process and the cameras'
    servers (`cameras_cpu_seconds`: their CPU seconds so far) spent meanwhile."""
    start, cpu0, cameras0 = time.monotonic(), cpu_seconds(), cameras_cpu_seconds()
    time.sleep(seconds)
    end = time.monotonic()
    cpu, cameras = cpu_seconds(), cameras_cpu_seconds()
    return Window(start, end, (cpu - cpu0) / (end - start) * 100, (cameras - cameras0) / (end - start) * 100)
