"""Server processes a test started: waiting for one to answer, finding its workers."""

from __future__ import annotations

import contextlib
import subprocess
import time

import httpx
import psutil


def wait_until_answers(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    """Until GET `url` answers 200. AssertionError when the process exits first (with its
    stderr, if the test piped it) or `timeout` runs out."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            err = proc.stderr.read() if proc.stderr else b""
            text = err.decode(errors="replace") if isinstance(err, bytes) else err
            raise AssertionError(f"the server exited ({proc.returncode}) before answering {url}: {text.strip()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=5).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} did not answer within {timeout:g} s")
        time.sleep(0.2)


def spawned_workers(proc: subprocess.Popen) -> list[int]:
    """The live workers a multi-worker server spawned (multiprocessing's resource tracker is
    a child too)."""
    pids = []
    for child in psutil.Process(proc.pid).children():
        try:
            if "resource_tracker" not in " ".join(child.cmdline()):
                pids.append(child.pid)
        except (psutil.ZombieProcess, psutil.NoSuchProcess):  # dead, not yet reaped
            pass
    return pids
