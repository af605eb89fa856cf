"""`streetwatch api serve`: uvicorn, minus its idle wake-ups.

uvicorn's server wakes every 100 ms to look at its exit flag (and refreshes the Date header
every tenth time), and its multi-worker supervisor pings every worker over a pipe every 0.5 s.
An idle API with two workers spent 11.6 ms of CPU a second on that alone (strace: nothing
else woke it; 2-core VM), and a fleet's 17 heartbeats a second each paid 0.7 ms of it: a third
of the heartbeat's budget. Even one wake a second cost a worker 2-3 ms of CPU a second here:
a process woken after a pause touches its memory again at several times the cost
(api/huge_pages.py, which `api serve` also applies). Here:

* `QuietServer` sleeps until a signal asks it to exit, which wakes it at once; the Date
  header is made when a response needs it in a new second (`DatedHeaders`), as fresh as
  uvicorn's;
* `QuietSupervisor` health-checks its workers every `HEALTH_CHECK_S` (30 s) instead of every 0.5 s,
  and a signal (Ctrl-C, SIGTERM, SIGHUP's restart, SIGTTIN/SIGTTOU, a worker's death) wakes it
  at once, through `signal.set_wakeup_fd`.

Everything else is uvicorn's own: the same Config, protocols, graceful shutdown, worker
restarts, and startup-failure exit status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import signal
import sys
import time
from email.utils import formatdate
from types import FrameType

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.server import ServerState
from uvicorn.supervisors import multiprocess

# A hung worker is found and replaced within this (uvicorn: 0.5 s; gunicorn's worker timeout:
# 30 s); a dead one at once (SIGCHLD). A check wakes the supervisor and each worker's ping
# thread from a long sleep, and such a wake is dear here: ~20 ms of the supervisor's CPU and
# ~6 ms of each worker's per check (perf stat, idle, two workers). Every 5 s that was 0.1 ms per
# heartbeat of a 500-box fleet (bench fleet); every 30 s, a sixth of it.
HEALTH_CHECK_S = 30.0

logger = logging.getLogger("uvicorn.error")


class DatedHeaders(ServerState):
    """uvicorn's shared server state, whose default headers (Date first) are made when a
    response asks for them in a new second, instead of by a timer each second."""

    def __init__(self, config: uvicorn.Config):
        self._config, self._second, self._headers = config, -1, []
        super().__init__()

    @property  # type: ignore[override]
    def default_headers(self) -> list[tuple[bytes, bytes]]:
        second = int(time.time())
        if second != self._second:
            self._second = second
            date = [(b"date", formatdate(second, usegmt=True).encode())] if self._config.date_header else []
            self._headers = date + self._config.encoded_headers
        return self._headers

    @default_headers.setter
    def default_headers(self, value: list[tuple[bytes, bytes]]) -> None:
        self._headers = value  # uvicorn's own assignments (at start, in on_tick)


class QuietServer(uvicorn.Server):
    """A uvicorn server that sleeps until a signal when idle, instead of waking ten times a second."""

    _wake: asyncio.Event | None = None
    _loop: asyncio.AbstractEventLoop | None = None

    def __init__(self, config: uvicorn.Config):
        super().__init__(config)
        self.server_state = DatedHeaders(config)

    async def main_loop(self) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        # on_tick checks the exit flag, and the request limit and notify callback when the
        # counter is a multiple of 10: here, every call. With neither of those two set,
        # nothing but an exit signal needs a wake-up.
        while not await self.on_tick(0):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.until_next_tick())
            self._wake.clear()

    def until_next_tick(self) -> float | None:
        if self.config.limit_max_requests is None and self.config.callback_notify is None:
            return None
        return 1.0 - time.time() % 1.0  # the next whole second

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            # The handler runs in the loop's own thread between two bytecodes; the threadsafe
            # call is what wakes a loop blocked in epoll (the self-pipe), as asyncio's own
            # signal handling does.
            loop.call_soon_threadsafe(wake.set)


class QuietWorker(multiprocess.Process):
    """uvicorn's worker process, running a QuietServer. It is pickled into the spawned child
    by class name, so the child builds its server from here."""

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = QuietServer(config=self.config)
        return self._server


class QuietSupervisor(multiprocess.Multiprocess):
    """uvicorn's multi-worker supervisor, checking its workers every HEALTH_CHECK_S and
    whenever a signal comes (a worker's death included)."""

    def run(self) -> None:
        # uvicorn's supervisor builds its workers by the module's name `Process` (at start,
        # on a restart, on SIGHUP and SIGTTIN); pointing that name at QuietWorker for the
        # supervisor's life is one line where overriding would copy three of its methods.
        wake_read, wake_write = os.pipe()
        for fd in (wake_read, wake_write):
            os.set_blocking(fd, False)
        previous_fd = signal.set_wakeup_fd(wake_write)
        # A worker's death wakes the supervisor too (SIGCHLD is ignored unless handled): it is
        # replaced at once, and a worker that fails at startup stops the server at once.
        previous_chld = signal.signal(signal.SIGCHLD, lambda sig, frame: None)
        original, multiprocess.Process = multiprocess.Process, QuietWorker
        try:
            logger.info("Started parent process [%d]", os.getpid())
            self.init_processes()
            while not self.should_exit.is_set():
                if select.select([wake_read], [], [], HEALTH_CHECK_S)[0]:
                    with contextlib.suppress(BlockingIOError):
                        os.read(wake_read, 512)
                self.handle_signals()
                self.keep_subprocess_alive()
            self.terminate_all()
            self.join_all()
            logger.info("Stopping parent process [%d]", os.getpid())
        finally:
            multiprocess.Process = original
            signal.signal(signal.SIGCHLD, previous_chld)
            signal.set_wakeup_fd(previous_fd)
            os.close(wake_read)
            os.close(wake_write)


def run(config: uvicorn.Config) -> None:
    """Serve `config` (an import string when config.workers > 1) as uvicorn.run would."""
    try:
        if config.workers > 1:
            QuietSupervisor(config, sockets=[config.bind_socket()]).run()
            return
        server = QuietServer(config=config)
        server.run()
    except KeyboardInterrupt:
        return
    finally:
        if config.uds and os.path.exists(config.uds):
            os.remove(config.uds)
    if not server.started:
        sys.exit(STARTUP_FAILURE)
