"""What touching memory again after a pause costs on this host: the baseline for `bench fleet`.

A fleet heartbeat wakes an API worker idle ~100 ms, and on a VM most of its CPU goes to
touching again pages it touched before (api/huge_pages.py). How much that costs depends on the
host, not on Streetwatch: the same code gave 2.2-2.7 ms per heartbeat one night and 3.9-5.2
the next morning. So `bench fleet` measures this in the same run, and its figures can be
compared across days as ratios.

    python -m benchmarks.cold_pages
"""

from __future__ import annotations

import mmap
import statistics
import time
from dataclasses import asdict, dataclass

from api.huge_pages import THP_ON, thp_mode

PAGE = 4096
PAGES = 2000  # touched per probe: about what a heartbeat's Python touches
REGION = 64 << 20


@dataclass
class ColdPages:
    """µs per page, median of `rounds` probes: one byte read in each of PAGES resident pages."""

    warm_us: float  # back to back
    after_pause_us: float  # after `pause_s` asleep, on 4 KiB pages
    after_pause_huge_us: float | None  # the same bytes on 2 MiB pages (None: no THP here)
    pause_s: float
    rounds: int

    def __str__(self) -> str:
        huge = f", {self.after_pause_huge_us:.2f} on huge pages" if self.after_pause_huge_us is not None else ""
        return (f"host: touching a resident page again costs {self.warm_us:.3f} µs back to back, "
                f"{self.after_pause_us:.2f} µs after {self.pause_s * 1000:.0f} ms asleep{huge}")


def _region(huge: bool) -> memoryview | None:
    if huge and thp_mode() not in THP_ON:
        return None
    area = mmap.mmap(-1, REGION, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if huge:
        try:
            area.madvise(mmap.MADV_HUGEPAGE)
        except (AttributeError, OSError):  # not Linux, or no THP
            return None
    view = memoryview(area)
    for offset in range(0, REGION, PAGE):  # resident before any probe
        view[offset] = 1
    return view


def _probe(view: memoryview, pause_s: float, rounds: int) -> float:
    def touch() -> int:
        total = 0
        for offset in range(0, PAGE * PAGES, PAGE):
            total += view[offset]
        return total

    times = []
    for _ in range(rounds):
        if pause_s:
            time.sleep(pause_s)
        start = time.thread_time_ns()
        touch()
        times.append((time.thread_time_ns() - start) / 1000 / PAGES)
    return statistics.median(times)


def measure(pause_s: float = 0.1, rounds: int = 20) -> ColdPages:
    small = _region(huge=False)
    assert small is not None
    warm = _probe(small, 0.0, rounds)
    cold = _probe(small, pause_s, rounds)
    huge = _region(huge=True)
    cold_huge = _probe(huge, pause_s, rounds) if huge is not None else None
    return ColdPages(round(warm, 4), round(cold, 3), None if cold_huge is None else round(cold_huge, 3),
                     pause_s, rounds)


if __name__ == "__main__":
    found = measure()
    print(found)
    print(asdict(found))
