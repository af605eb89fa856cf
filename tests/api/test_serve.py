"""`streetwatch api serve`'s server and supervisor (api/serve.py): uvicorn's, waking less."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx
import psutil
import pytest
import uvicorn

from api.serve import QuietServer
from streams.camera_server import free_port
from tests.support.servers import spawned_workers

REPO = Path(__file__).resolve().parents[2]

TINY_APP = '''
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})
'''


async def tiny_app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


def _start(server: QuietServer) -> threading.Thread:
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    return thread


def test_an_idle_server_does_not_wake_and_its_date_header_stays_fresh():
    port = free_port()
    server = QuietServer(uvicorn.Config(tiny_app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    ticks: list[float] = []
    on_tick = server.on_tick

    async def counted(counter: int) -> bool:
        ticks.append(time.monotonic())
        return await on_tick(counter)

    server.on_tick = counted  # type: ignore[method-assign]
    thread = _start(server)
    first = httpx.get(f"http://127.0.0.1:{port}/").headers["date"]
    time.sleep(2.5)
    second = httpx.get(f"http://127.0.0.1:{port}/").headers["date"]
    server.handle_exit(signal.SIGTERM, None)  # as a signal would (from here: the flag and a wake-up)
    thread.join(10)
    assert not thread.is_alive()
    # The first look at the exit flag, and the one after the wake-up. uvicorn's own loop
    # ticks every 100 ms: ~25 times in this while.
    assert len(ticks) <= 2, ticks
    assert parsedate_to_datetime(second) > parsedate_to_datetime(first)  # made anew in a new second
    assert abs(parsedate_to_datetime(second).timestamp() - time.time()) < 5


def test_with_a_request_limit_the_server_looks_once_a_second():
    server = QuietServer(uvicorn.Config(tiny_app, limit_max_requests=10))
    assert server.until_next_tick() is not None and 0 < server.until_next_tick() <= 1
    assert QuietServer(uvicorn.Config(tiny_app)).until_next_tick() is None


def test_an_exit_signal_wakes_the_server_at_once():
    port = free_port()
    server = QuietServer(uvicorn.Config(tiny_app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    server.until_next_tick = lambda: 3600.0  # type: ignore[method-assign]  # only the signal can wake it
    thread = _start(server)
    loop = server._loop
    assert loop is not None
    # As a signal handler runs: in the loop's thread, between two of its steps.
    loop.call_soon_threadsafe(server.handle_exit, signal.SIGTERM, None)
    thread.join(30)
    assert not thread.is_alive(), "the server slept on after the exit signal"


def _supervisor(tmp_path: Path, port: int, health_check_s: float) -> subprocess.Popen:
    (tmp_path / "tiny.py").write_text(TINY_APP)
    code = (f"import sys; sys.path[:0] = [{str(tmp_path)!r}, {str(REPO)!r}]; import uvicorn; from api import serve; "
            f"serve.HEALTH_CHECK_S = {health_check_s}; "
            f"serve.run(uvicorn.Config('tiny:app', host='127.0.0.1', port={port}, workers=2, log_level='info'))")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while len(spawned_workers(proc)) < 2 or not _answers(port):
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
        assert time.monotonic() < deadline, "the workers did not start"
        time.sleep(0.2)
    return proc


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def test_the_supervisor_replaces_a_dead_worker_at_once(tmp_path):
    port = free_port()
    proc = _supervisor(tmp_path, port, health_check_s=3600)  # only the worker's death can wake it
    try:
        dead = spawned_workers(proc)[0]
        os.kill(dead, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while dead in spawned_workers(proc) or len(spawned_workers(proc)) < 2:
            assert time.monotonic() < deadline, "the dead worker was not replaced"
            time.sleep(0.2)
        assert _answers(port)
    finally:
        _stop(proc)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_supervisor_and_its_workers_at_once(tmp_path, sig):
    port = free_port()
    proc = _supervisor(tmp_path, port, health_check_s=3600)  # only the signal can wake it
    workers = spawned_workers(proc)
    try:
        os.kill(proc.pid, sig)
        assert proc.wait(30) == 0
        output = proc.stdout.read().decode() if proc.stdout else ""
        assert "Stopping parent process" in output, output
        assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
                       for pid in workers)
    finally:
        _stop(proc)
