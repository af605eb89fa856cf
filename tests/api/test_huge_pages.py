"""`streetwatch api serve` puts its workers' Python heap on transparent huge pages (api/huge_pages.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from api.huge_pages import THP_ON, TUNABLE, heap_environment, thp_mode
from streams.camera_server import free_port
from tests.support.servers import spawned_workers, wait_until_answers

REPO = Path(__file__).resolve().parents[2]


def test_the_environment_adds_malloc_and_its_tunable():
    assert heap_environment({}, "madvise") == {"PYTHONMALLOC": "malloc", "GLIBC_TUNABLES": TUNABLE}
    assert heap_environment({}, "always") == {"PYTHONMALLOC": "malloc", "GLIBC_TUNABLES": TUNABLE}
    # Another tunable of the caller's is kept, and theirs for hugetlb wins.
    assert heap_environment({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}, "madvise")["GLIBC_TUNABLES"] == \
        f"glibc.malloc.arena_max=2:{TUNABLE}"
    assert heap_environment({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}, "madvise")["GLIBC_TUNABLES"] == \
        "glibc.malloc.hugetlb=0"


def test_nothing_changes_without_thp_or_with_an_allocator_chosen():
    assert heap_environment({}, "never") is None
    assert heap_environment({}, None) is None
    assert heap_environment({"PYTHONMALLOC": "pymalloc"}, "madvise") is None
    assert heap_environment({"PYTHONMALLOC": "malloc", "GLIBC_TUNABLES": TUNABLE}, "madvise") is None


def test_the_kernels_mode_is_the_bracketed_word(tmp_path):
    path = tmp_path / "enabled"
    path.write_text("always [madvise] never\n")
    assert thp_mode(path) == "madvise"
    path.write_text("[never]\n")
    assert thp_mode(path) == "never"
    assert thp_mode(tmp_path / "missing") is None


def _environ(pid: int) -> dict[str, str]:
    pairs = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(p.decode().split("=", 1) for p in pairs if b"=" in p)


def _huge_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("AnonHugePages:"):
            return int(line.split()[1])
    raise AssertionError("no AnonHugePages line")


def _serve(tmp_path: Path, *flags: str) -> tuple[subprocess.Popen, list[int]]:
    """`api serve` on a migrated SQLite file; the process and the pids serving requests."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONMALLOC", "GLIBC_TUNABLES")}
    env |= {"STREETWATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'sw.db'}", "STREETWATCH_SECRET_KEY": "k" * 40}
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "streetwatch_cli", "api", "serve", "--migrate", "--port", str(port),
                             "--no-access-log", *flags], cwd=REPO, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until_answers(f"http://127.0.0.1:{port}/openapi.json", proc)
    except BaseException:
        _stop(proc)
        raise
    return proc, spawned_workers(proc) if "--workers" in flags else [proc.pid]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@pytest.mark.parametrize("flags", [(), ("--workers", "2")], ids=["one worker", "two workers"])
def test_the_serving_processes_heap_is_on_huge_pages(tmp_path, flags):
    on = thp_mode() in THP_ON
    proc, workers = _serve(tmp_path, *flags)
    try:
        assert workers
        for pid in workers:
            env = _environ(pid)
            # One worker: the same process, re-executed with the variables (its PID kept).
            assert (env.get("PYTHONMALLOC") == "malloc" and TUNABLE in env.get("GLIBC_TUNABLES", "")) is on
            assert (_huge_kib(pid) > 0) is on
    finally:
        _stop(proc)


def test_no_huge_pages_keeps_the_heap_as_it_was(tmp_path):
    proc, (pid,) = _serve(tmp_path, "--no-huge-pages")
    try:
        assert "PYTHONMALLOC" not in _environ(pid)
        assert _huge_kib(pid) == 0
    finally:
        _stop(proc)
