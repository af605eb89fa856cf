"""The API workers' Python heap on transparent huge pages (`streetwatch api serve`).

Why: on a VM, memory a process has not touched for a few milliseconds costs far more to touch
again than to compute with. After 100 ms of idle, reading one byte in each of 2,000 resident
4 KiB pages took 4.3 ms here, against 0.07 ms back to back; with the same bytes on 2 MiB pages,
0.4 ms (each 4 KiB page missed costs a two-level page walk through the guest's and the host's
tables, with caches another tenant has emptied). A fleet heartbeat is exactly that: a worker
idle ~100 ms wakes, runs 0.2 ms of work spread over hundreds of pages of Python objects, and
sleeps again. In-process, the heartbeat's short way on PostgreSQL took 3.6-4.3 ms of CPU after
a 100 ms pause with pymalloc on 4 KiB pages, and 1.8-2.0 ms with the heap on huge pages.

How: CPython 3.11's own allocator takes its arenas from mmap directly (1 MiB, unaligned), out
of reach of any setting. So the workers start with `PYTHONMALLOC=malloc` (every object from
glibc's malloc) and `GLIBC_TUNABLES=glibc.malloc.hugetlb=1` (glibc 2.35+: malloc advises
MADV_HUGEPAGE on its heap, which the kernel's THP "madvise" mode then backs with 2 MiB pages).
Both are read at process start only, so with one worker `api serve` re-executes itself once
with them (same PID, same arguments); with more, the workers it spawns inherit them.

Nothing changes where the kernel has THP off ("never"), where the caller set PYTHONMALLOC
itself, or with `api serve --no-huge-pages`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

TUNABLE = "glibc.malloc.hugetlb=1"
THP_ON = ("always", "madvise")  # the modes in which madvise(MADV_HUGEPAGE) gets huge pages
THP_ENABLED = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def thp_mode(path: Path = THP_ENABLED) -> str | None:
    """The kernel's THP mode ("always", "madvise", "never"), None where it has none (not Linux)."""
    try:
        text = path.read_text()
    except OSError:
        return None
    chosen = [word[1:-1] for word in text.split() if word.startswith("[")]
    return chosen[0] if chosen else None


def heap_environment(env: Mapping[str, str], mode: str | None) -> dict[str, str] | None:
    """The variables to add to `env` for a heap on huge pages; None when there is nothing to add
    (already there, the caller chose its own allocator, or no THP to use)."""
    if mode not in THP_ON:
        return None
    if "PYTHONMALLOC" in env:
        return None  # someone chose an allocator (debug, pymalloc, malloc with their own tunables)
    tunables = env.get("GLIBC_TUNABLES", "")
    has_tunable = any(t.startswith("glibc.malloc.hugetlb=") for t in tunables.split(":"))
    return {"PYTHONMALLOC": "malloc",
            "GLIBC_TUNABLES": tunables if has_tunable else ":".join(filter(None, (tunables, TUNABLE)))}


def serve_with_huge_pages(workers: int) -> None:
    """Put this server's workers on huge pages: set the environment the workers will be spawned
    with (workers > 1), or re-execute this process with it (one worker serves in this process,
    whose allocator is already chosen). Returns when there is nothing to do; with one worker and
    something to do, does not return."""
    extra = heap_environment(os.environ, thp_mode())
    if extra is None:
        return
    if workers > 1:
        os.environ.update(extra)
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, sys.orig_argv, {**os.environ, **extra})
